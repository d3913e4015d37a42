"""``ssl-ws linear-probe CKPT STORE``: logistic regression on frozen embeddings.

Embeds the (``--labels-per-class``-restricted) train split, the val and test
splits, standardizes, chooses C on val and reports test top-1 and per-class
accuracy; the results JSON holds the numbers, every option and the encoder identity.
"""

from __future__ import annotations

from ._eval_common import add_few_labels, add_model_store, config_of, load_model_and_store, results_path


def configure(parser):
    add_model_store(parser)
    add_few_labels(parser)
    parser.add_argument("--C", dest="cs", type=float, nargs="+", default=None, metavar="C",
                        help="inverse regularization strengths to choose from on val (default: 0.001 0.01 0.1 1 10 100)")
    parser.add_argument("--max-iter", type=int, default=1000, help="L-BFGS iterations (default: 1000)")
    parser.add_argument("--out", help="results JSON (default: linear_probe[_lpcN].json beside CKPT)")


def run(args):
    from ..eval.few_labels import parse_labels_per_class
    from ..eval.protocols import probe_encoder
    from ..eval.results import encoder_info, store_info, write_results

    from ..errors import SslWsError

    if args.cs is not None and not all(c > 0 and c < float("inf") for c in args.cs):
        raise SslWsError(f"--C values must be positive numbers, got {args.cs}")
    if args.max_iter < 1:
        raise SslWsError(f"--max-iter must be at least 1, got {args.max_iter}")
    model, store, device = load_model_and_store(args)
    per_class = parse_labels_per_class(args.labels_per_class)
    res = probe_encoder(model, store, labels_per_class=per_class, seed=args.seed, max_views=args.max_views, cs=args.cs,
                        max_iter=args.max_iter, batch_size=args.batch_size, device=device, progress=not args.quiet)
    path = write_results(results_path(args, "linear_probe", per_class), "linear-probe", res, config_of(args),
                         encoder=encoder_info(model, args.ckpt), store=store_info(store, args.store))
    val = "" if res["val_top1_best"] is None else f" on val {res['val_top1_best']:.4f}"
    print(f"linear probe ({res['labels_per_class']} labels/class, {res['n_train']} train INRs): "
          f"test top-1 {res['top1']:.4f} (C={res['best_C']:g} chosen{val}); results -> {path}")
    return 0
