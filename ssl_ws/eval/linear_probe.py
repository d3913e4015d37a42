"""Linear probe: logistic regression on frozen, standardized embeddings.

The linear evaluation protocol of SimCLR (Chen et al., ICML 2020, Sec. 4.2 and
App. B.6): the encoder is frozen, its embeddings ``z`` are standardized with
statistics of the labelled training set (``(z - mu) / sigma``, scikit-learn's
``StandardScaler``), and a multinomial logistic regression

    p(y = c | z) = softmax_c(W z + b),   min  sum_i -log p(y_i | z_i) + ||W||^2 / (2 C)

is fitted with L-BFGS (scikit-learn's ``LogisticRegression``). The inverse
regularization strength ``C`` is chosen from a small log-spaced grid by accuracy on
the validation split (ties go to the stronger regularization), and the classifier
of that ``C`` -- trained on the training split only -- is scored once on the test
split: top-1 accuracy and per-class accuracy.

The fits run with one BLAS/OpenMP thread (``threadpoolctl``): these problems are
small and dense, and several threads spinning on a shared or busy CPU slow one fit
down by one to two orders of magnitude.
"""

from __future__ import annotations

import warnings
from typing import Dict, Optional, Sequence

import numpy as np

from ..errors import SslWsError
from .knn import per_class_accuracy

DEFAULT_CS: Sequence[float] = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)


def _fit(x: np.ndarray, y: np.ndarray, c: float, max_iter: int, seed: int):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    clf = LogisticRegression(C=c, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
    return clf


def _predict(clf, x: np.ndarray) -> np.ndarray:
    return clf.predict(x).astype(np.int64)


def linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: Optional[np.ndarray],
    val_y: Optional[np.ndarray],
    test_x: np.ndarray,
    test_y: np.ndarray,
    cs: Sequence[float] = DEFAULT_CS,
    num_classes: Optional[int] = None,
    max_iter: int = 1000,
    seed: int = 0,
) -> Dict:
    """Fit the probe for every ``C`` in ``cs``, pick ``C`` on val, score on test.

    With a single ``C`` the validation split is not needed (``val_x`` may be None).

    Returns:
        dict: ``top1`` (test), ``per_class`` (test), ``best_C``, ``val_top1`` (per C),
        ``train_top1``, ``n_iter`` and ``converged`` (L-BFGS iterations of the chosen fit,
        fewer than ``max_iter``) and sizes.
    """
    from sklearn.preprocessing import StandardScaler

    train_y = np.asarray(train_y, dtype=np.int64)
    test_y = np.asarray(test_y, dtype=np.int64)
    cs = [float(c) for c in cs]
    if not cs or not all(c > 0 and np.isfinite(c) for c in cs):
        raise SslWsError(f"regularization values C must be positive numbers, got {cs}")
    if int(max_iter) < 1:
        raise SslWsError(f"--max-iter must be at least 1, got {max_iter}")
    if len(train_x) == 0 or len(test_x) == 0:
        raise SslWsError("the linear probe needs a non-empty training and test split")
    if np.unique(train_y).size < 2:
        raise SslWsError("the linear probe needs labelled training examples of at least two classes")
    has_val = val_x is not None and len(val_x) > 0
    if len(cs) > 1 and not has_val:
        raise SslWsError("choosing C needs a non-empty validation split; give a single C (--C) to skip the choice")
    if num_classes is None:
        num_classes = int(max(train_y.max(), test_y.max()) + 1)

    scaler = StandardScaler().fit(train_x)
    xtr = scaler.transform(train_x)
    xte = scaler.transform(test_x)
    xva = scaler.transform(val_x) if has_val else None
    val_y = np.asarray(val_y, dtype=np.int64) if has_val else None

    best = None
    val_scores = {}
    for c in cs:
        clf = _fit(xtr, train_y, c, max_iter, seed)
        acc = float(np.mean(_predict(clf, xva) == val_y)) if has_val else None
        val_scores[repr(c)] = acc
        # strict '>' keeps the smaller C (stronger regularization) on ties
        if best is None or (acc is not None and acc > best[0]):
            best = (acc, c, clf)
    _, best_c, clf = best
    pred = _predict(clf, xte)
    return {
        "top1": float(np.mean(pred == test_y)),
        "per_class": per_class_accuracy(pred, test_y, num_classes),
        "best_C": best_c,
        "val_top1": val_scores,
        "val_top1_best": best[0],
        "train_top1": float(np.mean(_predict(clf, xtr) == train_y)),
        "n_iter": int(np.max(clf.n_iter_)),
        "converged": bool(np.max(clf.n_iter_) < max_iter),
        "n_train": int(len(train_x)),
        "n_val": int(len(val_x)) if has_val else 0,
        "n_test": int(len(test_x)),
    }
