"""``ssl-ws retrieval-eval CKPT STORE``: how good are nearest-network queries?

Queries the test split (each query left out) against a bank (the test split itself by
default, or ``--bank train``) and prints recall@k, precision@k and mAP for *same object*
(other fits of the same image) and *same class*, for the encoder's embeddings beside the raw
flat weights, the rendered pixels and a random-init encoder of the same architecture, under
each similarity post-processing (:mod:`ssl_ws.retrieve.retrieval`).
"""

from __future__ import annotations

import os

from ..errors import SslWsError
from ._eval_common import add_model_store, config_of, load_model_and_store, results_path


def _list(text, choices, what):
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if "all" in items:
        return list(choices)
    bad = [t for t in items if t not in choices]
    if bad or not items:
        raise SslWsError(f"--{what} takes a comma-separated subset of {', '.join(choices)} (or all), got {text!r}")
    return list(dict.fromkeys(items))


def _ks(text):
    try:
        ks = [int(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        ks = []
    if not ks or min(ks) < 1:
        raise SslWsError(f"--k takes comma-separated positive integers (e.g. 1,5,10), got {text!r}")
    return ks


def configure(parser):
    from ..retrieve.retrieval import FEATURES, POSTPROCESS

    add_model_store(parser)
    parser.add_argument("--queries", default="test", help="split whose INRs are the queries (default: test)")
    parser.add_argument("--bank", default=None,
                        help="split searched (default: the query split itself, each query left out); e.g. train")
    parser.add_argument("--features", default="all",
                        help=f"comma-separated subset of {', '.join(FEATURES)} (default: all)")
    parser.add_argument("--post", default="all",
                        help=f"similarity post-processing, comma-separated subset of {', '.join(POSTPROCESS)} "
                             "(default: all; statistics fitted on the bank)")
    parser.add_argument("--k", default="1,5,10", help="cut-offs of recall@k and precision@k (default: 1,5,10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random-init encoder (default: 0)")
    parser.add_argument("--png", help="also draw, for a few queries, the query, its top answers and the rank of its "
                                      "other fits (encoder embeddings) to this PNG")
    parser.add_argument("--png-queries", type=int, default=4, help="queries in the picture (default: 4)")
    parser.add_argument("--png-k", type=int, default=6, help="answers per query in the picture (default: 6)")
    parser.add_argument("--out", help="results JSON (default: retrieval.json beside CKPT)")


def run(args):
    from ..eval.results import encoder_info, store_info, write_results
    from ..retrieve.retrieval import FEATURES, POSTPROCESS, evaluate_retrieval, format_table

    features = _list(args.features, FEATURES, "features")
    posts = _list(args.post, POSTPROCESS, "post")
    ks = _ks(args.k)
    if args.png and (args.png_queries < 1 or args.png_k < 1):
        raise SslWsError("--png-queries and --png-k must be positive")
    if args.png and not os.path.isdir(os.path.dirname(os.path.abspath(args.png))):
        raise SslWsError(f"the folder of --png {args.png} does not exist")
    model, store, device = load_model_and_store(args)
    if args.max_views is not None and args.max_views < 1:
        raise SslWsError(f"--max-views must be positive, got {args.max_views}")
    res = evaluate_retrieval(store, model, features=features, posts=posts, query_split=args.queries,
                             bank_split=args.bank, ks=ks, max_views=args.max_views, device=device, seed=args.seed,
                             progress=not args.quiet)
    if args.png:
        from ..retrieve.retrieval import retrieval_picture

        post = "center" if "center" in posts else posts[0]
        res["picture"] = retrieval_picture(store, model, args.png, post=post, query_split=args.queries,
                                           bank_split=args.bank, n_queries=args.png_queries, k=args.png_k,
                                           max_views=args.max_views, seed=args.seed, device=device)
    path = write_results(results_path(args, "retrieval"), "retrieval", res, config_of(args),
                         encoder=encoder_info(model, args.ckpt), store=store_info(store, args.store))
    print(f"retrieval: {res['queries']} queries ({res['query_split']}) against {res['bank']} INRs "
          f"({res['bank_split']})\n")
    print(format_table(res))
    skipped = {r["object"]["skipped"] for r in res["rows"]}
    if skipped and max(skipped) == res["queries"]:
        print("\nno query has another fit of its object in the bank: object metrics need >= 2 fits per object")
    if args.png:
        ranks = "; ".join(f"row {q['row']}: {q['other_fit_ranks'][:3]}" for q in res["picture"]["queries"])
        print(f"\npicture -> {args.png} (other fits found at ranks {ranks})")
    print(f"\nresults -> {path}")
    return 0
