"""Embedding extraction: a frozen encoder applied to a store split, in batches.

For an :class:`~ssl_ws.models.export.EmbeddingModel` ``f`` (normalizer + encoder,
``f(raw ws) -> [B, D]``) and the rows ``r_1..r_n`` of a split, the embeddings are
``z_i = f(W_{r_i})``, computed under ``torch.inference_mode`` in batches of raw
weights read from the store's memmap, on any device, and returned as float32 numpy
arrays together with the row ids and labels (the frozen-feature protocol of
SimCLR, Chen et al., ICML 2020, Sec. 4; used for the linear probe, the kNN
classifier and the retrieval index).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from ..devices import resolve_device
from ..errors import SslWsError

SPLITS_ALL = "all"


@dataclass
class Embeddings:
    """Embeddings of some store rows.

    Attributes:
        emb: float32 ``[n, D]``.
        rows: int64 ``[n]`` store row ids.
        labels: int64 ``[n]`` class labels of those rows.
    """

    emb: np.ndarray
    rows: np.ndarray
    labels: np.ndarray
    info: Dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.emb.shape[0])

    @property
    def dim(self) -> int:
        return int(self.emb.shape[1])

    def subset(self, positions: np.ndarray) -> "Embeddings":
        """The embeddings at ``positions`` (indices into this object, not row ids)."""
        positions = np.asarray(positions, dtype=np.int64)
        return Embeddings(self.emb[positions], self.rows[positions], self.labels[positions], dict(self.info))

    def save(self, out_dir: str, info: Optional[Dict] = None) -> None:
        """``embeddings.npy``, ``rows.npy``, ``labels.npy`` and ``info.json`` in ``out_dir``."""
        os.makedirs(out_dir, exist_ok=True)
        np.save(os.path.join(out_dir, "embeddings.npy"), self.emb.astype(np.float32, copy=False))
        np.save(os.path.join(out_dir, "rows.npy"), self.rows.astype(np.int64, copy=False))
        np.save(os.path.join(out_dir, "labels.npy"), self.labels.astype(np.int64, copy=False))
        meta = dict(self.info)
        meta.update(info or {})
        meta.update({"n": len(self), "dim": self.dim})
        with open(os.path.join(out_dir, "info.json"), "w") as f:
            json.dump(meta, f, indent=2, default=str)

    @classmethod
    def load(cls, out_dir: str) -> "Embeddings":
        try:
            emb = np.load(os.path.join(out_dir, "embeddings.npy"))
            rows = np.load(os.path.join(out_dir, "rows.npy"))
            labels = np.load(os.path.join(out_dir, "labels.npy"))
        except FileNotFoundError as exc:
            raise SslWsError(f"{out_dir} holds no embeddings written by `ssl-ws embed` ({exc.filename} is missing)") from None
        from ..files import read_json

        info = {}
        path = os.path.join(out_dir, "info.json")
        if os.path.exists(path):
            info = read_json(path, "info.json", limit=64 << 20)
        return cls(emb, rows, labels, info)


def check_compatible(model, store) -> None:
    """The encoder must have been trained on INRs of the store's architecture."""
    if model.spec != store.spec:
        raise SslWsError(
            f"encoder/store mismatch: the encoder takes INRs [{model.spec.describe()}] "
            f"but the store holds [{store.spec.describe()}]"
        )


def load_encoder_for(path: str, store, device):
    """The exported encoder at ``path`` in eval mode on ``device``, checked to take ``store``'s INRs."""
    from ..models.export import load_encoder

    model = load_encoder(path, map_location="cpu").to(device).eval()
    check_compatible(model, store)
    return model


def split_rows(store, split: str, max_views: Optional[int] = None) -> np.ndarray:
    """Sorted row ids of ``split`` (``"all"``: every row); an empty split is an error."""
    n_total = int(store.params.shape[0])
    if max_views is not None and int(max_views) < 1:
        raise SslWsError(f"--max-views must be at least 1, got {max_views}")
    if split == SPLITS_ALL:
        rows = np.arange(n_total, dtype=np.int64)
        if max_views is not None:
            rows = rows[np.asarray(store.view_ids)[rows] < max_views]
    else:
        known = list(store.splits)
        if split not in known:
            raise SslWsError(f"unknown split {split!r}; the store has {known} (or 'all')")
        rows = np.asarray(store.rows(split, max_views=max_views), dtype=np.int64)
    if rows.size == 0:
        raise SslWsError(f"split {split!r} of the store is empty: nothing to embed")
    return rows


@torch.inference_mode()
def embed_weights(model, ws, batch_size: int = 256, device=None) -> np.ndarray:
    """Embeddings ``[B, D]`` (float32 numpy) of a WeightSpace, in batches on ``device``."""
    device = resolve_device(device)
    model = model.to(device).eval()
    outs = [model(ws[s : s + batch_size].to(device)).float().cpu() for s in range(0, len(ws), batch_size)]
    out = torch.cat(outs).numpy() if outs else np.zeros((0, model.out_dim), np.float32)
    _check_finite(out)
    return out


def _check_finite(emb: np.ndarray, rows=None) -> None:
    """Refuse NaN/Inf embeddings (a corrupt encoder): they would give silently wrong numbers."""
    ok = np.isfinite(emb).all(axis=1)
    if not ok.all():
        j = int(np.argmin(ok))
        what = f"store row {int(rows[j])}" if rows is not None else f"INR {j} of the batch"
        raise SslWsError(f"the encoder gave a non-finite embedding (NaN or Inf) for {what}; "
                         f"its weights may be corrupt (check the checkpoint)")


@torch.inference_mode()
def embed_rows(
    model,
    store,
    rows: Sequence[int],
    batch_size: int = 256,
    device=None,
    progress: bool = True,
    desc: str = "embed",
) -> Embeddings:
    """Embeddings of the given store rows (read from the memmap batch by batch)."""
    from tqdm.auto import tqdm

    check_compatible(model, store)
    if batch_size < 1:
        raise SslWsError(f"batch size must be positive, got {batch_size}")
    rows = np.asarray(rows, dtype=np.int64)
    n_total = int(store.params.shape[0])
    if rows.size and (rows.min() < 0 or rows.max() >= n_total):
        bad = int(rows[(rows < 0) | (rows >= n_total)][0])
        raise SslWsError(f"row id {bad} is out of range: the store has rows 0..{n_total - 1}")
    device = resolve_device(device)
    model = model.to(device).eval()
    out = np.empty((rows.size, model.out_dim), dtype=np.float32)
    with tqdm(total=rows.size, desc=desc, unit="INR", disable=not progress, leave=False) as bar:
        for s in range(0, rows.size, batch_size):
            batch = rows[s : s + batch_size]
            ws = store.weights(batch, device=device)
            out[s : s + batch.size] = model(ws).float().cpu().numpy()
            bar.update(batch.size)
    _check_finite(out, rows)
    labels = np.asarray(store.labels)[rows].astype(np.int64)
    return Embeddings(out, rows, labels, {"encoder_identity": getattr(model, "identity", None)})


def embed_split(
    model,
    store,
    split: str,
    batch_size: int = 256,
    device=None,
    progress: bool = True,
    max_views: Optional[int] = None,
) -> Embeddings:
    """Embeddings of every row of ``split`` (``"all"`` for the whole store).

    Returns:
        :class:`Embeddings` with ``emb`` float32 ``[n, D]``, ``rows`` and ``labels``.
    """
    rows = split_rows(store, split, max_views=max_views)
    emb = embed_rows(model, store, rows, batch_size=batch_size, device=device, progress=progress, desc=f"embed {split}")
    emb.info["split"] = split
    return emb
