"""``ssl-ws baselines STORE``: what a user would do instead of learning from weights.

Logistic regression on the raw flat weights, logistic regression and a small CNN on
the INRs rendered on the store's pixel grid (:mod:`ssl_ws.eval.baselines`), trained on
the train split and scored on val and test; prints one row per method and, with
``--out``, writes a results JSON with the numbers and every option.
"""

from __future__ import annotations

import argparse


def _views(text):
    if str(text).lower() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of views or 'all', got {text!r}") from None


def configure(parser):
    from ..eval.baselines import METHODS

    parser.add_argument("store", metavar="STORE", help="INR store directory")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated baselines (default: {','.join(METHODS)})")
    parser.add_argument("--train-views", type=_views, default=None, metavar="N",
                        help="views per training object, or all (default: all)")
    parser.add_argument("--eval-views", type=_views, default=1, metavar="N",
                        help="views per val/test object, or all (default: 1)")
    parser.add_argument("--labels-per-class", default="all", metavar="N",
                        help="labelled training objects per class (1, 10, ... or all), drawn with --seed as "
                             "linear-probe / knn / finetune draw them (default: all)")
    parser.add_argument("--cnn-epochs", type=int, default=20, metavar="N", help="epochs of the pixel CNN (default: 20)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the labelled-subset draw and of the classifiers (default: 0)")
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:N (default: auto)")
    parser.add_argument("--out", metavar="JSON", help="also write the results JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args):
    from ..data import load_store
    from ..eval.baselines import format_table, run_baselines
    from ..eval.few_labels import parse_labels_per_class
    from ..eval.results import store_info, write_results
    from ._eval_common import config_of

    store = load_store(args.store)
    res = run_baselines(store, args.methods, train_views=args.train_views, eval_views=args.eval_views,
                        labels_per_class=parse_labels_per_class(args.labels_per_class), seed=args.seed,
                        cnn_epochs=args.cnn_epochs, device=args.device, progress=not args.quiet)
    print(format_table(res))
    if args.out:
        path = write_results(args.out, "baselines", res, config_of(args), store=store_info(store, args.store))
        print(f"results -> {path}")
    return 0
