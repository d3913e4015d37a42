#!/usr/bin/env python
"""Logistic regression on the *original* Fashion-MNIST pixels, split as the full-scale store is.

The full-scale store (``run_suite.py`` stage ``fit-1v``: ``--split 55000,5000,10000`` over the
70,000 images, train images first) trains on the first 55,000 training images, validates on the
next 5,000 and tests on the 10,000 t10k images. This fits scikit-learn's
``LogisticRegression`` (L-BFGS, C = 1, up to 1,000 iterations) on the first 55,000 images'
pixels in [0, 1] and scores the three splits: the number a weight-space classifier of those
INRs should be read against when its store is not at hand (``ssl-ws baselines STORE`` gives
the same model on the INRs' renders). A CPU job (78 s on one core of the CI machine)::

    python benchmarks/gpu/pixel_lr_fmnist.py [--data-dir /usr/share/datasets/fashion-mnist]
"""

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, HERE)


def full_split():
    """Train / validation / test slices of the 70,000 images, from the suite's full scale."""
    from run_suite import SCALES

    n_tr, n_va, n_te = (int(n) for n in SCALES["full"]["split"].split(","))
    return slice(0, n_tr), slice(n_tr, n_tr + n_va), slice(n_tr + n_va, n_tr + n_va + n_te)


def main(argv=None) -> int:
    from sklearn.linear_model import LogisticRegression

    from ssl_ws.data.sources import load_idx_dataset

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist", help="Fashion-MNIST IDX files")
    args = ap.parse_args(argv)
    ds = load_idx_dataset(args.data_dir, "fashion-mnist")
    x = np.asarray(ds.images, dtype=np.float32).reshape(len(ds.images), -1)  # already in [0, 1]
    y = np.asarray(ds.labels)
    tr, va, te = full_split()
    t0 = time.perf_counter()
    clf = LogisticRegression(max_iter=1000, C=1.0).fit(x[tr], y[tr])
    print(f"command: python benchmarks/gpu/pixel_lr_fmnist.py --data-dir {args.data_dir}")
    print(f"pixel LR on the original images: train {clf.score(x[tr], y[tr]):.4f}  val {clf.score(x[va], y[va]):.4f}  "
          f"test {clf.score(x[te], y[te]):.4f}  ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
