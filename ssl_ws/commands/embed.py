"""``ssl-ws embed CKPT STORE --split test --out emb/``: embeddings of a store split.

Writes ``embeddings.npy`` (float32 [n, D]), ``rows.npy``, ``labels.npy`` and
``info.json`` (encoder identity, store, split, every option); ``--projector DIR``
also exports them to TensorBoard's embedding projector with rendered thumbnails.
"""

from __future__ import annotations

import os
import time

from ._eval_common import add_projector, add_model_store, config_of, load_model_and_store


def configure(parser):
    add_model_store(parser)
    parser.add_argument("--split", default="test", help="train, val, test or all (default: test)")
    parser.add_argument("--out", required=True, help="output directory")
    add_projector(parser)


def run(args):
    from ..eval.embed import embed_split
    from ..eval.results import encoder_info, store_info, write_results

    model, store, device = load_model_and_store(args)
    t0 = time.perf_counter()
    emb = embed_split(model, store, args.split, batch_size=args.batch_size, device=device, progress=not args.quiet,
                      max_views=args.max_views)
    seconds = time.perf_counter() - t0
    from ..errors import user_os_errors

    with user_os_errors(f"cannot write embeddings to {args.out}"):
        emb.save(args.out)
    results = {"split": args.split, "n": len(emb), "dim": emb.dim, "seconds": round(seconds, 3),
               "files": ["embeddings.npy", "rows.npy", "labels.npy"]}
    if args.projector:
        from ..retrieve.projector import export_store_projector

        results["projector"] = export_store_projector(args.projector, store, emb.emb, emb.rows, args.projector_max,
                                                      device=device, tag=f"{args.split}")
    path = write_results(os.path.join(args.out, "info.json"), "embed", results, config_of(args),
                         encoder=encoder_info(model, args.ckpt), store=store_info(store, args.store))
    print(f"embedded {len(emb)} INRs of split {args.split!r} -> [{len(emb)}, {emb.dim}] in {seconds:.1f}s; wrote {args.out}"
          + (f"; projector: {args.projector}" if args.projector else ""))
    return 0
