"""Few-label evaluation: a labelled training subset of N objects per class.

Label efficiency is what pretraining is for (SimCLR, Chen et al. 2020, Sec. 7
evaluates with 1% / 10% of the labels), so every evaluator can restrict its
labelled training set. The subset is drawn **by object**: for every class ``c``,
``N`` distinct objects (images) of class ``c`` are drawn uniformly without
replacement with a fixed seed, and every row (every INR view) of those objects is
kept -- views of one image are not independent labels. A class with fewer than
``N`` objects keeps all of them; an ``N`` above every class's count is refused (it would be
"all" under another name). The draw depends only on the seed and on the set
of (object, label) pairs, not on row order or on the encoder, so every encoder is
evaluated on the same labelled subset.
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np

from ..errors import SslWsError


def parse_labels_per_class(value: Union[str, int, None]) -> Optional[int]:
    """``"all"``/None -> None (every label), else a positive int."""
    if value is None or (isinstance(value, str) and value.lower() == "all"):
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise SslWsError(f"--labels-per-class must be a positive integer or 'all', got {value!r}") from None
    if n < 1:
        raise SslWsError(f"--labels-per-class must be a positive integer or 'all', got {value!r}")
    return n


def sample_per_class(labels: np.ndarray, object_ids: np.ndarray, per_class: Optional[int], seed: int = 0) -> np.ndarray:
    """Positions (into ``labels``) of the rows of ``per_class`` objects per class.

    Args:
        labels: int ``[n]`` label of each row.
        object_ids: int ``[n]`` object of each row (rows of one object share a label).
        per_class: objects to keep per class; None keeps everything.
        seed: the draw's seed.

    Returns:
        sorted int64 positions ``[m]``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    object_ids = np.asarray(object_ids, dtype=np.int64)
    n = labels.shape[0]
    if per_class is None:
        return np.arange(n, dtype=np.int64)
    objects, first = np.unique(object_ids, return_index=True)
    obj_label = labels[first]
    # one label per object, or the subset is ill-defined
    inverse = np.searchsorted(objects, object_ids)
    if np.any(obj_label[inverse] != labels):
        raise SslWsError("rows of one object carry different labels; cannot sample labelled objects per class")
    largest = int(np.bincount(obj_label - obj_label.min()).max()) if obj_label.size else 0
    if per_class > largest:
        raise SslWsError(f"--labels-per-class {per_class} is more than any class has ({largest} objects in the "
                         f"largest); use 'all' for every label")
    rng = np.random.default_rng(seed)
    # sort objects by their key (stable: independent of row order), shuffle, then rank within class
    perm = rng.permutation(objects.size)
    lab = obj_label[perm]
    order = np.argsort(lab, kind="stable")
    lab_sorted = lab[order]
    group_start = np.searchsorted(lab_sorted, lab_sorted, side="left")
    rank = np.arange(lab_sorted.size) - group_start
    chosen = np.zeros(objects.size, dtype=bool)
    chosen[perm[order[rank < per_class]]] = True
    return np.flatnonzero(chosen[inverse]).astype(np.int64)
