"""The two frozen-embedding protocols as functions: a linear probe and a weighted kNN of an encoder on a store.

Both take the labelled training rows of the train split (``labels_per_class`` objects per class,
every view of a chosen object, a draw fixed by ``seed``: :meth:`~ssl_ws.data.store.INRStore.select`),
embed them and the test split (``max_views`` fits per object) with the encoder, and score the test
split: the probe with the inverse regularization ``C`` chosen on the validation split
(:func:`~ssl_ws.eval.linear_probe.linear_probe`), kNN at each ``(k, temperature)`` setting, the first
being the primary one (:func:`~ssl_ws.eval.knn.knn_evaluate`). They return the results dicts that
``ssl-ws linear-probe`` / ``ssl-ws knn`` write, so the commands and the quickstart report the same numbers.
"""

from __future__ import annotations

import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from .embed import embed_rows, split_rows
from .few_labels import sample_per_class


def labelled_train_rows(store, labels_per_class: Optional[int], seed: int = 0, max_views: Optional[int] = None):
    """Rows of the train split restricted to ``labels_per_class`` objects per class (None: all)."""
    rows = split_rows(store, "train", max_views=max_views)
    keep = sample_per_class(np.asarray(store.labels)[rows], np.asarray(store.object_ids)[rows], labels_per_class, seed)
    return rows[keep]


def probe_encoder(model, store, *, labels_per_class: Optional[int] = None, seed: int = 0,
                  max_views: Optional[int] = None, cs: Optional[Sequence[float]] = None, max_iter: int = 1000,
                  batch_size: int = 256, device=None, progress: bool = False) -> Dict:
    """Linear-probe results of ``model`` on ``store`` (see module docstring)."""
    from .linear_probe import DEFAULT_CS, linear_probe

    t0 = time.perf_counter()
    train_rows = labelled_train_rows(store, labels_per_class, seed, max_views)
    cs = list(cs or DEFAULT_CS)

    def emb(rows, desc):
        return embed_rows(model, store, rows, batch_size=batch_size, device=device, progress=progress, desc=desc)

    tr = emb(train_rows, "embed train")
    va = emb(split_rows(store, "val", max_views), "embed val") if len(cs) > 1 else None
    te = emb(split_rows(store, "test", max_views), "embed test")
    res = linear_probe(tr.emb, tr.labels, None if va is None else va.emb, None if va is None else va.labels,
                       te.emb, te.labels, cs=cs, num_classes=int(store.num_classes), max_iter=max_iter, seed=seed)
    res["labels_per_class"] = labels_per_class or "all"
    res["train_objects"] = int(len(set(map(int, store.object_ids[train_rows]))))
    res["class_names"] = store.label_names
    res["seconds"] = round(time.perf_counter() - t0, 3)
    return res


def knn_encoder(model, store, *, settings: Sequence[Tuple[int, float]] = ((20, 0.07), (200, 0.1)),
                labels_per_class: Optional[int] = None, seed: int = 0, max_views: Optional[int] = None,
                backend: str = "auto", batch_size: int = 256, device=None, progress: bool = False) -> Dict:
    """Weighted-kNN results of ``model`` on ``store`` (see module docstring)."""
    from .knn import knn_evaluate

    t0 = time.perf_counter()
    train_rows = labelled_train_rows(store, labels_per_class, seed, max_views)

    def emb(rows, desc):
        return embed_rows(model, store, rows, batch_size=batch_size, device=device, progress=progress, desc=desc)

    tr = emb(train_rows, "embed train")
    te = emb(split_rows(store, "test", max_views), "embed test")
    t1 = time.perf_counter()
    res = knn_evaluate(tr.emb, tr.labels, te.emb, te.labels, list(settings), num_classes=int(store.num_classes),
                       backend=backend, device=device)
    res["top1"] = res["settings"][0]["top1"]
    res["labels_per_class"] = labels_per_class or "all"
    res["class_names"] = store.label_names
    res["seconds_embed"] = round(t1 - t0, 3)
    res["seconds_knn"] = round(time.perf_counter() - t1, 3)
    return res
