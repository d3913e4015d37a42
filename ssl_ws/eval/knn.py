"""Weighted k-nearest-neighbour classification of frozen embeddings.

The protocol of Wu et al. (CVPR 2018, "Unsupervised Feature Learning via
Non-Parametric Instance Discrimination"), also used by DINO (Caron et al. 2021):
embeddings are L2-normalized, so the inner product is the cosine similarity
``s_ij = <z_i, z_j>``; a query ``q`` takes its ``k`` most similar training
embeddings ``N_k(q)`` and scores every class ``c`` by

    score_c(q) = sum_{j in N_k(q), y_j = c} exp(s_qj / T),

predicting ``argmax_c score_c`` (ties go to the smallest class index). Defaults
``k = 20, T = 0.07``; ``k = 200, T = 0.1`` is reported beside it.

The neighbour search is exact: faiss ``IndexFlatIP`` (Johnson et al., "Billion-
scale similarity search with GPUs", 2019) when faiss is importable, otherwise a
pure-torch path (chunked matrix product + ``topk``, on any device) that returns the
same neighbours; the vote is one shared vectorized function.
"""

from __future__ import annotations

from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import SslWsError

DEFAULT_SETTINGS: Tuple[Tuple[int, float], ...] = ((20, 0.07), (200, 0.1))
BACKENDS = ("auto", "faiss", "torch")


def have_faiss() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str = "auto") -> str:
    if backend not in BACKENDS:
        raise SslWsError(f"unknown kNN backend {backend!r}; expected one of {BACKENDS}")
    if backend == "auto":
        return "faiss" if have_faiss() else "torch"
    if backend == "faiss" and not have_faiss():
        raise SslWsError("faiss is not installed (pip install faiss-cpu); use --backend torch")
    return backend


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length (float32, C-contiguous, as faiss wants)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, eps), dtype=np.float32)


def search_faiss(database: np.ndarray, queries: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` inner-product search with faiss ``IndexFlatIP``: (sims, idx) ``[n_q, k]``."""
    import faiss

    index = faiss.IndexFlatIP(database.shape[1])
    index.add(np.ascontiguousarray(database, dtype=np.float32))
    sims, idx = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return sims, idx.astype(np.int64)


def search_torch(
    database: np.ndarray, queries: np.ndarray, k: int, device=None, chunk: int = 1024
) -> Tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` inner-product search in torch (chunked over queries): (sims, idx)."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    db = torch.as_tensor(np.asarray(database, dtype=np.float32), device=device)
    q_all = torch.as_tensor(np.asarray(queries, dtype=np.float32), device=device)
    sims, idx = [], []
    with torch.inference_mode():
        for s in range(0, q_all.shape[0], chunk):
            v, i = torch.topk(q_all[s : s + chunk] @ db.T, k, dim=1)
            sims.append(v.cpu())
            idx.append(i.cpu())
    if not sims:
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
    return torch.cat(sims).numpy(), torch.cat(idx).numpy().astype(np.int64)


def search(database: np.ndarray, queries: np.ndarray, k: int, backend: str = "auto", device=None):
    """Exact top-``k`` inner-product neighbours of ``queries`` in ``database``."""
    backend = resolve_backend(backend)
    if backend == "faiss":
        return search_faiss(database, queries, k)
    return search_torch(database, queries, k, device=device)


def weighted_vote(
    sims: np.ndarray, idx: np.ndarray, train_labels: np.ndarray, num_classes: int, temperature: float
) -> np.ndarray:
    """Class scores ``[n_q, C]``: ``sum_j exp(s_qj / T)`` over the neighbours of each class.

    Scores are scaled per query by ``exp(-max_j s_qj / T)`` (no overflow at small T;
    the argmax is unchanged). Neighbour slots with ``idx < 0`` (faiss padding) are ignored.
    """
    if not (temperature > 0 and np.isfinite(temperature)):
        raise SslWsError(f"kNN temperature must be a positive number, got {temperature}")
    sims = np.asarray(sims, dtype=np.float64)
    idx = np.asarray(idx, dtype=np.int64)
    n_q, k = idx.shape
    valid = idx >= 0
    top = np.where(valid, sims, -np.inf).max(axis=1, keepdims=True) if k else np.zeros((n_q, 1))
    w = np.where(valid, np.exp((sims - top) / temperature), 0.0)
    lab = np.asarray(train_labels, dtype=np.int64)[np.where(valid, idx, 0)]
    flat = (np.arange(n_q)[:, None] * num_classes + lab).ravel()
    return np.bincount(flat, weights=w.ravel(), minlength=n_q * num_classes).reshape(n_q, num_classes)


def knn_predict(
    train_emb: np.ndarray,
    train_labels: np.ndarray,
    query_emb: np.ndarray,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: Optional[int] = None,
    backend: str = "auto",
    device=None,
) -> np.ndarray:
    """Predicted labels ``[n_q]`` of the weighted kNN classifier (see module doc)."""
    preds, _ = knn_predict_many(train_emb, train_labels, query_emb, [(k, temperature)], num_classes, backend, device)
    return preds[0]


def knn_predict_many(
    train_emb: np.ndarray,
    train_labels: np.ndarray,
    query_emb: np.ndarray,
    settings: Sequence[Tuple[int, float]] = DEFAULT_SETTINGS,
    num_classes: Optional[int] = None,
    backend: str = "auto",
    device=None,
) -> Tuple[list, Dict]:
    """Predictions for several ``(k, T)`` settings from one neighbour search (the largest k).

    Returns:
        (list of ``[n_q]`` predictions, one per setting; info dict with the backend and the k used).
    """
    train_labels = np.asarray(train_labels, dtype=np.int64)
    if len(train_emb) == 0:
        raise SslWsError("kNN needs at least one labelled training embedding")
    if len(query_emb) == 0:
        raise SslWsError("kNN needs at least one query embedding")
    if train_emb.shape[1] != query_emb.shape[1]:
        raise SslWsError(f"embedding sizes differ: train {train_emb.shape[1]}, queries {query_emb.shape[1]}")
    for k, _t in settings:
        if int(k) < 1:
            raise SslWsError(f"k must be positive, got {k}")
    num_classes = int(num_classes if num_classes is not None else train_labels.max() + 1)
    backend = resolve_backend(backend)
    k_max = min(max(int(k) for k, _ in settings), len(train_emb))
    sims, idx = search(l2_normalize(train_emb), l2_normalize(query_emb), k_max, backend=backend, device=device)
    preds = []
    used = []
    for k, t in settings:
        kk = min(int(k), k_max)
        used.append(kk)
        # neighbours come sorted by similarity, so the top-kk are the first kk columns
        scores = weighted_vote(sims[:, :kk], idx[:, :kk], train_labels, num_classes, float(t))
        preds.append(scores.argmax(axis=1))
    return preds, {"backend": backend, "k_used": used}


def per_class_accuracy(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> list:
    """Accuracy of each class (None for a class absent from ``labels``)."""
    labels = np.asarray(labels, dtype=np.int64)
    correct = np.bincount(labels, weights=(pred == labels).astype(np.float64), minlength=num_classes)
    count = np.bincount(labels, minlength=num_classes)
    return [float(c / n) if n else None for c, n in zip(correct, count)]


def knn_evaluate(
    train_emb: np.ndarray,
    train_labels: np.ndarray,
    test_emb: np.ndarray,
    test_labels: np.ndarray,
    settings: Iterable[Tuple[int, float]] = DEFAULT_SETTINGS,
    num_classes: Optional[int] = None,
    backend: str = "auto",
    device=None,
) -> Dict:
    """Top-1 accuracy (and per-class accuracy) of the weighted kNN for each ``(k, T)``."""
    settings = [(int(k), float(t)) for k, t in settings]
    test_labels = np.asarray(test_labels, dtype=np.int64)
    if num_classes is None:
        num_classes = int(max(np.max(train_labels), np.max(test_labels)) + 1)
    preds, info = knn_predict_many(train_emb, train_labels, test_emb, settings, num_classes, backend, device)
    results = []
    for (k, t), kk, pred in zip(settings, info["k_used"], preds):
        results.append(
            {
                "k": k,
                "k_used": kk,
                "temperature": t,
                "top1": float(np.mean(pred == test_labels)),
                "per_class": per_class_accuracy(pred, test_labels, num_classes),
            }
        )
    return {"backend": info["backend"], "settings": results, "n_train": int(len(train_emb)), "n_test": int(len(test_emb))}
