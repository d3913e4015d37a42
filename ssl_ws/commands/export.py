"""`ssl-ws export CKPT --out encoder.pt`: encoder-only weights from a training checkpoint."""

from __future__ import annotations


def configure(parser) -> None:
    parser.add_argument("checkpoint", help="a .ckpt written by `ssl-ws pretrain`/`train`, or a run directory (uses best.ckpt, else last.ckpt)")
    parser.add_argument("--out", "-o", default="encoder.pt", help="output file (default: encoder.pt)")


def run(args) -> int:
    import os

    from ..models.export import load_encoder, load_payload, save_encoder

    path = args.checkpoint
    if os.path.isdir(path):
        for name in ("best.ckpt", "last.ckpt"):
            cand = os.path.join(path, "checkpoints", name)
            if os.path.exists(cand):
                path = cand
                break
    model = load_encoder(path)
    config = load_payload(path).get("config")
    model.info["checkpoint"] = os.path.abspath(path)
    save_encoder(model, args.out, config=config)
    print(f"wrote {args.out}: {model.encoder_config.get('name')} encoder, out_dim {model.out_dim}, "
          f"INRs [{model.spec.describe()}], identity {model.identity}")
    return 0
