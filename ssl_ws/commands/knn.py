"""``ssl-ws knn CKPT STORE``: weighted kNN accuracy of frozen embeddings (faiss).

The train split (restricted by ``--labels-per-class``) is the labelled memory, the
test split the queries; votes weighted by ``exp(sim / T)``. Default settings
``20:0.07`` (primary) and ``200:0.1`` beside it.
"""

from __future__ import annotations

from ..errors import SslWsError
from ._eval_common import add_few_labels, add_model_store, config_of, load_model_and_store, results_path


def _setting(text: str):
    import math

    try:
        k, t = text.split(":")
        k, t = int(k), float(t)
    except ValueError:
        raise SslWsError(f"a kNN setting is K:T (e.g. 20:0.07), got {text!r}") from None
    if k < 1 or not (t > 0 and math.isfinite(t)):
        raise SslWsError(f"a kNN setting K:T needs K >= 1 and a positive temperature T, got {text!r}")
    return k, t


def configure(parser):
    add_model_store(parser)
    add_few_labels(parser)
    parser.add_argument("--settings", nargs="+", default=["20:0.07", "200:0.1"], metavar="K:T",
                        help="neighbours and temperature of each reported setting, the first is primary (default: 20:0.07 200:0.1)")
    parser.add_argument("--backend", choices=("auto", "faiss", "torch"), default="auto",
                        help="neighbour search: faiss IndexFlatIP, or the pure-torch fallback (default: auto = faiss if installed)")
    parser.add_argument("--out", help="results JSON (default: knn[_lpcN].json beside CKPT)")


def run(args):
    from ..eval.few_labels import parse_labels_per_class
    from ..eval.protocols import knn_encoder
    from ..eval.results import encoder_info, store_info, write_results

    settings = [_setting(s) for s in args.settings]
    model, store, device = load_model_and_store(args)
    per_class = parse_labels_per_class(args.labels_per_class)
    res = knn_encoder(model, store, settings=settings, labels_per_class=per_class, seed=args.seed,
                      max_views=args.max_views, backend=args.backend, batch_size=args.batch_size, device=device,
                      progress=not args.quiet)
    path = write_results(results_path(args, "knn", per_class), "knn", res, config_of(args),
                         encoder=encoder_info(model, args.ckpt), store=store_info(store, args.store))
    parts = ", ".join(f"k={s['k']}" + (f" (all {s['k_used']} train INRs)" if s.get("k_used", s["k"]) != s["k"] else "")
                      + f" T={s['temperature']:g}: {s['top1']:.4f}" for s in res["settings"])
    print(f"kNN ({res['backend']}, {res['labels_per_class']} labels/class, {res['n_train']} train INRs) "
          f"test top-1 {parts}; results -> {path}")
    return 0
