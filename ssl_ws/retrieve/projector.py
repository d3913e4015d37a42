"""TensorBoard embedding-projector export with rendered INRs as sprites.

Writes what TensorBoard's projector reads (``tensors.tsv``, ``metadata.tsv``,
``sprite.png``, ``projector_config.pbtxt``) through
``torch.utils.tensorboard.SummaryWriter.add_embedding``: one point per INR, its
metadata columns (label, class, row, object, view) and, as its thumbnail, the
INR rendered on the store's pixel grid. View with ``tensorboard --logdir DIR``,
tab "Projector" (PCA / t-SNE / UMAP).

TensorBoard caps a sprite sheet at 8192 x 8192 pixels, so at most
``(8192 // max(H, W))^2`` thumbnails fit (~85,000 of 28x28); larger sets are
subsampled uniformly at random with a fixed seed (``max_points``).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
import torch

from ..errors import SslWsError

SPRITE_LIMIT = 8192


def projector_subset(n: int, max_points: Optional[int], image_size=None, seed: int = 0) -> np.ndarray:
    """Sorted positions of the points to export (all, or a seeded random subset)."""
    cap = n if max_points is None else int(max_points)
    if image_size is not None:
        cap = min(cap, (SPRITE_LIMIT // max(image_size)) ** 2)
    if cap < 1:
        raise SslWsError(f"--projector-max must be positive, got {max_points}")
    if n <= cap:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False)).astype(np.int64)


def export_projector(
    log_dir: str,
    emb: np.ndarray,
    columns: Dict[str, Sequence],
    thumbnails: Optional[torch.Tensor] = None,
    tag: str = "embeddings",
) -> str:
    """Write one projector embedding to ``log_dir``.

    Args:
        emb: ``[n, D]``.
        columns: metadata columns, name -> ``n`` values (e.g. label, class, row, view).
        thumbnails: ``[n, C, H, W]`` in [0, 1] (C = 1 or 3), or None for no sprite.
        tag: the embedding's name in TensorBoard.
    """
    from torch.utils.tensorboard import SummaryWriter

    emb = np.asarray(emb, dtype=np.float32)
    n = emb.shape[0]
    if n == 0:
        raise SslWsError("no embeddings to export to the projector")
    header = list(columns)
    for name in header:
        if len(columns[name]) != n:
            raise SslWsError(f"metadata column {name!r} has {len(columns[name])} values for {n} embeddings")
    clean = lambda v: str(v).replace("\t", " ").replace("\n", " ")  # noqa: E731
    metadata = [[clean(columns[name][i]) for name in header] for i in range(n)]
    label_img = None
    if thumbnails is not None:
        if thumbnails.shape[0] != n:
            raise SslWsError(f"{thumbnails.shape[0]} thumbnails for {n} embeddings")
        label_img = thumbnails.detach().float().clamp(0, 1).cpu()
        if label_img.shape[1] == 1:
            label_img = label_img.expand(-1, 3, -1, -1).contiguous()
    writer = SummaryWriter(log_dir=log_dir)
    try:
        if len(header) == 1:
            writer.add_embedding(torch.from_numpy(emb), metadata=[m[0] for m in metadata], label_img=label_img, tag=tag)
        else:
            writer.add_embedding(
                torch.from_numpy(emb), metadata=metadata, label_img=label_img, tag=tag, metadata_header=header
            )
    finally:
        writer.close()
    return log_dir


def export_store_projector(log_dir: str, store, emb: np.ndarray, rows: np.ndarray, max_points: Optional[int] = 10000,
                           seed: int = 0, device=None, tag: str = "embeddings") -> Dict:
    """Projector export of store rows' embeddings, thumbnails rendered from the store."""
    from .gallery import render_rows

    rows = np.asarray(rows, dtype=np.int64)
    keep = projector_subset(len(rows), max_points, tuple(store.image_size), seed)
    rows_k = rows[keep]
    labels = np.asarray(store.labels)[rows_k]
    names = list(getattr(store, "class_names", None) or [])
    columns = {
        "label": labels.tolist(),
        "class": [names[i] if 0 <= i < len(names) else str(i) for i in labels.tolist()],
        "row": rows_k.tolist(),
        "object": np.asarray(store.object_ids)[rows_k].tolist(),
        "view": np.asarray(store.view_ids)[rows_k].tolist(),
    }
    thumbs = render_rows(store, rows_k, device=device)
    export_projector(log_dir, np.asarray(emb)[keep], columns, thumbs, tag=tag)
    return {"dir": log_dir, "points": int(len(rows_k)), "of": int(len(rows)), "tag": tag}
