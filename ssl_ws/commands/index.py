"""``ssl-ws index CKPT STORE --out index/``: a faiss retrieval index of a store.

Saves the raw embeddings (so any index kind can be rebuilt), row/label/object/view
ids, the faiss index and ``index.json`` (encoder identity + path, store path, split,
index parameters, every option). ``--index hnsw`` or ``ivf`` for millions of INRs.
"""

from __future__ import annotations

from ._eval_common import add_projector, add_model_store, config_of, load_model_and_store


def configure(parser):
    add_model_store(parser)
    parser.add_argument("--out", required=True, help="index directory")
    parser.add_argument("--split", default="all", help="rows to index: all, train, val or test (default: all)")
    parser.add_argument("--index", dest="kind", choices=("flat", "hnsw", "ivf"), default="flat",
                        help="flat = exact IndexFlatIP; hnsw / ivf = approximate, for millions of INRs (default: flat)")
    parser.add_argument("--hnsw-m", type=int, default=32, help="HNSW links per node (default: 32)")
    parser.add_argument("--ef-search", type=int, default=64, help="HNSW candidates per query (default: 64)")
    parser.add_argument("--nlist", type=int, default=None, help="IVF cells (default: ~4 sqrt(n))")
    parser.add_argument("--nprobe", type=int, default=8, help="IVF cells searched per query (default: 8)")
    parser.add_argument("--post", choices=("center", "l2", "whiten", "none"), default="center",
                        help="similarity post-processing fitted on the indexed embeddings and applied to queries: "
                             "center (default: centre then cosine; best measured), l2 (plain cosine), whiten, none")
    add_projector(parser)


def run(args):
    import os

    from ..retrieve.index import index_store_split

    model, store, device = load_model_and_store(args)
    index = index_store_split(model, store, ckpt_path=args.ckpt, store_path=args.store, split=args.split,
                              max_views=args.max_views, kind=args.kind, post=args.post, batch_size=args.batch_size,
                              device=device, progress=not args.quiet, config=config_of(args), hnsw_m=args.hnsw_m,
                              ef_search=args.ef_search, nlist=args.nlist, nprobe=args.nprobe)
    info = index.info
    if args.projector:
        from ..retrieve.projector import export_store_projector

        index.info["projector"] = export_store_projector(args.projector, store, index.emb, index.rows, args.projector_max,
                                                         device=device, tag=f"index-{args.split}")
    from ..errors import user_os_errors

    with user_os_errors(f"cannot write the index {args.out}"):
        out = index.save(args.out)
    post = index.info["post"]
    print(f"indexed {len(index)} INRs ({args.split}) with {args.kind} [{index.emb.shape[1]}-d, encoder "
          f"{info['encoder']['identity']}] -> {os.path.relpath(out)}" + (f"; projector: {args.projector}" if args.projector else ""))
    print(f"similarity spread (median cosine of random pairs): {post['median_cosine_raw']:.3f} raw, "
          f"{post['median_cosine']:.3f} after '{post['mode']}'" + (" (near 1: every INR looks alike; "
          "try --post center)" if post["median_cosine"] > 0.9 else ""))
    return 0
