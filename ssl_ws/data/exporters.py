"""Export an INR store to the DWSNets layout (Navon et al., ICML 2023), for other code to read.

Written (and read back by the DWSNets code's ``INRDataset`` and by ``ssl-ws import dwsnets``)::

    out_dir/splits.json     {"train": {"path": [...], "label": [...]}, "val": ..., "test": ...}
    out_dir/inrs/<row>.pth  one state dict per INR: seq.{i}.weight [d_out, d_in], seq.{i}.bias [d_out]
                            (plain float32 tensors in layer order) and "label" (int64 scalar tensor)
    out_dir/export.json     where the INRs came from (store, spec, class names, rows); not read by DWSNets

DWSNets' loader takes the ``weight`` / ``bias`` entries in insertion order and the label from
``splits.json``; the files' ``label`` entry serves the multi-view convention. Paths are absolute
by default (as DWSNets writes them); ``relative_paths=True`` writes ``inrs/<row>.pth`` relative
to ``splits.json`` (movable; ``ssl-ws import`` resolves it). One INR per entry: views
``< max_views`` (default 1) of every object become separate entries. Coordinates are unchanged
(see :mod:`ssl_ws.data.importers`). Written under a temporary name beside ``out_dir``, then renamed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional

import torch

from ..atomic import atomic_directory
from ..errors import SslWsError
from .store import INRStore, load_store

FORMATS = ("dwsnets",)


def export_dwsnets(
    store,
    out_dir,
    max_views: Optional[int] = 1,
    *,
    relative_paths: bool = False,
    overwrite: bool = False,
    progress=None,
) -> Dict[str, int]:
    """Write ``store`` (an :class:`INRStore` or its path) to ``out_dir`` in the DWSNets layout.

    Returns the number of INRs written per split. ``max_views=None`` exports every view.
    """
    st: INRStore = store if isinstance(store, INRStore) else load_store(store)
    out = Path(out_dir).resolve()
    if out.exists() and not overwrite:
        raise SslWsError(f"output {out_dir} already exists; pass --overwrite to replace it")
    if max_views is not None and int(max_views) < 1:
        raise SslWsError(f"max_views must be >= 1, got {max_views}")
    if not st.splits:
        raise SslWsError(f"{st.path} has no splits")
    rows_of = {name: st.rows(name, max_views) for name in st.splits}
    total = sum(len(r) for r in rows_of.values())
    if total == 0:
        raise SslWsError(f"{st.path}: no INRs to export")

    with atomic_directory(out) as tmp:
        (tmp / "inrs").mkdir()
        splits, done = {}, 0
        for name, rows in rows_of.items():
            paths, labels = [], []
            for start in range(0, len(rows), 1024):
                chunk = rows[start : start + 1024]
                ws = st.weights(chunk)
                for j, r in enumerate(chunk.tolist()):
                    sd = ws.to_state_dict(j)  # seq.{i}.weight / seq.{i}.bias, compact copies
                    label = int(st.labels[r])
                    sd["label"] = torch.tensor(label, dtype=torch.int64)
                    rel = f"inrs/{r}.pth"
                    torch.save(sd, tmp / rel)
                    paths.append(rel if relative_paths else str(out / rel))
                    labels.append(label)
                    done += 1
                    if progress is not None:
                        progress(done, total)
            splits[name] = {"path": paths, "label": labels}
        with open(tmp / "splits.json", "w") as fh:
            json.dump(splits, fh)
        info = {
            "format": "dwsnets",
            "source_store": str(st.path.absolute()),
            "spec": st.spec.to_dict(),
            "class_names": st.class_names,
            "image_size": list(st.image_size),
            "max_views": max_views,
            "relative_paths": bool(relative_paths),
            "counts": {k: len(v["path"]) for k, v in splits.items()},
            "rows": {k: v.tolist() for k, v in rows_of.items()},
        }
        with open(tmp / "export.json", "w") as fh:
            json.dump(info, fh, indent=1)
    return {k: len(v) for k, v in rows_of.items()}


def export_store(store, out_dir, format: str = "dwsnets", **kwargs) -> Dict[str, int]:
    """Dispatch to the exporter of ``format`` (one of :data:`FORMATS`)."""
    if format not in FORMATS:
        raise SslWsError(f"unknown export format {format!r}; expected one of {FORMATS}")
    return export_dwsnets(store, out_dir, **kwargs)


__all__ = ["FORMATS", "export_dwsnets", "export_store"]
