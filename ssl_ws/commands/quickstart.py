"""`ssl-ws quickstart [--tiny]`: the whole pipeline on the embedded digits -- fit, pretrain,
linear probe and kNN (pretrained vs random weights), supervised training, baselines, retrieval.

The stages are :mod:`ssl_ws.quickstart`'s (each prints the ``ssl-ws`` command that runs it
alone); this command prints the results table they return, also in ``<output_dir>/quickstart.json``.
Everything is configured by ``configs/quickstart.yaml``.
"""

from __future__ import annotations

import argparse
import os

#: printed names of the baselines
BASELINE_NAMES = {"raw-lr": "baseline: LR on raw weights", "pixels-lr": "baseline: LR on rendered pixels",
                  "pixels-cnn": "baseline: small CNN on rendered pixels"}
#: printed names of the retrieval rows
RETRIEVAL_NAMES = (("encoder", "SimCLR DWSNet, one fit + refits"), ("raw", "raw standardized weights"),
                   ("pixels", "rendered pixels, cosine"))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None,
                        help="quickstart config (default: configs/quickstart.yaml of this checkout)")
    parser.add_argument("--tiny", action="store_true",
                        help="a few hundred INRs and one or two epochs: the end-to-end test of the pipeline")
    parser.add_argument("--output-dir", default=None, help="where results go (default: the config's output_dir)")
    parser.add_argument("--store", default=None, help="INR store to use or create (default: the config's fit.out)")


def _acc(v) -> str:
    return "   —" if v is None else f"{v:.3f}"


def run(args) -> int:
    from ..quickstart import run_quickstart

    res = run_quickstart(args.config, tiny=args.tiny, output_dir=args.output_dir, store=args.store)
    s, out = res.summary, res.output_dir
    print("\n=== results " + "=" * 58)
    print(f"{s['n_inrs']} INRs of {res.num_classes} classes, median PSNR {s['psnr_median']:.1f} dB; "
          f"top-1 accuracy on the test split")
    print(f"{'frozen embeddings':<40} {'labels/class':>12} {'linear probe':>13} {'kNN':>7}")
    for r in s["table"]:
        print(f"{r['model']:<40} {r['labels_per_class']:>12} {r['linear_probe']:>13.3f} {r['knn']:>7.3f}")
    sup = s["supervised"]
    print(f"\n{'trained end to end, all labels':<40} {'train acc':>12} {'test acc':>13}")
    print(f"{'same DWSNet, supervised':<40} {_acc(sup['train_acc']):>12} {_acc(sup['test_acc']):>13}")
    for name, r in s["baselines"].items():
        print(f"{BASELINE_NAMES.get(name, name):<40} {_acc(r['train_acc']):>12} {_acc(r['test_acc']):>13}")
    if s["retrieval"]:
        print(f"\n{'retrieval (test split, query left out)':<40} {'same class first':>17}")
        for key, label in RETRIEVAL_NAMES:
            r = s["retrieval"].get(key)
            if r:
                print(f"{label:<40} {r['class_r1']:>17.3f}")
    print(f"\nquery picture: {s['query_picture']}")
    print(f"results: {res.path}")
    print(f"TensorBoard: tensorboard --logdir {out}")
    print(f"search it in a browser: pip install -e \".[serve]\" && ssl-ws serve {os.path.join(out, 'index')}")
    timings = {k: v for k, v in res.seconds.items() if k != "total"}
    print(f"total time {res.seconds['total']:.0f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + ")")
    return 0
