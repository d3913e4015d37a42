"""`ssl-ws export CKPT --out encoder.pt`: encoder-only weights from a training checkpoint."""

from __future__ import annotations


def configure(parser) -> None:
    parser.add_argument("checkpoint", help="a .ckpt written by `ssl-ws pretrain`/`train`, or a run directory (uses best.ckpt, else last.ckpt)")
    parser.add_argument("--out", "-o", default="encoder.pt", help="output file (default: encoder.pt)")


def run(args) -> int:
    import os
    import sys

    from ..models.export import export_checkpoint, load_encoder

    from ..errors import SslWsError

    path, model = args.checkpoint, None
    if os.path.isdir(path):
        cands = [c for c in (os.path.join(path, "checkpoints", n) for n in ("best.ckpt", "last.ckpt"))
                 if os.path.exists(c)]
        if not cands:
            raise SslWsError(f"{path} holds no checkpoints/best.ckpt or last.ckpt: no checkpoint was written yet")
        for i, cand in enumerate(cands):  # an unreadable best.ckpt (a crash of an older version): the last one
            try:
                model = load_encoder(cand)
            except SslWsError as exc:
                if i + 1 == len(cands):
                    raise
                print(f"warning: {exc}; exporting {cands[i + 1]} instead", file=sys.stderr)
                continue
            path = cand
            break
    model = export_checkpoint(path, args.out, model)
    print(f"wrote {args.out}: {model.encoder_config.get('name')} encoder, out_dim {model.out_dim}, "
          f"INRs [{model.spec.describe()}], identity {model.identity}")
    return 0
