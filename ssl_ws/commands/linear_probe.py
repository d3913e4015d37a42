"""``ssl-ws linear-probe CKPT STORE``: logistic regression on frozen embeddings.

Embeds the (``--labels-per-class``-restricted) train split, the val and test
splits, standardizes, chooses C on val and reports test top-1 and per-class
accuracy; the results JSON holds the numbers, every option and the encoder identity.
"""

from __future__ import annotations

import time

from ._eval_common import (
    add_few_labels,
    class_names,
    num_classes,
    add_model_store,
    config_of,
    embed,
    labelled_rows,
    load_model_and_store,
    results_path,
)


def configure(parser):
    add_model_store(parser)
    add_few_labels(parser)
    parser.add_argument("--C", dest="cs", type=float, nargs="+", default=None, metavar="C",
                        help="inverse regularization strengths to choose from on val (default: 0.001 0.01 0.1 1 10 100)")
    parser.add_argument("--max-iter", type=int, default=1000, help="L-BFGS iterations (default: 1000)")
    parser.add_argument("--out", help="results JSON (default: linear_probe[_lpcN].json beside CKPT)")


def run(args):
    from ..eval.embed import split_rows
    from ..eval.linear_probe import DEFAULT_CS, linear_probe
    from ..eval.results import encoder_info, store_info, write_results

    from ..errors import SslWsError

    if args.cs is not None and not all(c > 0 and c < float("inf") for c in args.cs):
        raise SslWsError(f"--C values must be positive numbers, got {args.cs}")
    if args.max_iter < 1:
        raise SslWsError(f"--max-iter must be at least 1, got {args.max_iter}")
    model, store, device = load_model_and_store(args)
    t0 = time.perf_counter()
    train_rows, per_class = labelled_rows(store, "train", args)
    cs = args.cs or list(DEFAULT_CS)
    tr = embed(model, store, train_rows, args, device, "embed train")
    va = None
    if len(cs) > 1:
        va = embed(model, store, split_rows(store, "val", args.max_views), args, device, "embed val")
    te = embed(model, store, split_rows(store, "test", args.max_views), args, device, "embed test")
    res = linear_probe(tr.emb, tr.labels, None if va is None else va.emb, None if va is None else va.labels,
                       te.emb, te.labels, cs=cs, num_classes=num_classes(store), max_iter=args.max_iter, seed=args.seed)
    res["labels_per_class"] = per_class or "all"
    res["train_objects"] = int(len(set(map(int, store.object_ids[train_rows]))))
    res["class_names"] = class_names(store)
    res["seconds"] = round(time.perf_counter() - t0, 3)
    path = write_results(results_path(args, "linear_probe", per_class), "linear-probe", res, config_of(args),
                         encoder=encoder_info(model, args.ckpt), store=store_info(store, args.store))
    val = "" if res["val_top1_best"] is None else f" on val {res['val_top1_best']:.4f}"
    print(f"linear probe ({res['labels_per_class']} labels/class, {res['n_train']} train INRs): "
          f"test top-1 {res['top1']:.4f} (C={res['best_C']:g} chosen{val}); results -> {path}")
    return 0
