"""The INR store: a directory of INRs that numpy alone can read (layout in DESIGN.md).

::

    meta.json        format + version, spec (layer sizes, activation, w0, output offset),
                     class names, image size/channels, fitting recipe, image source
    params.npy       float32 [N, P]  flat parameters in PyTorch order (memory-mapped on load)
    labels.npy       int64 [N]
    object_ids.npy   int64 [N]       which image a row was fitted to
    view_ids.npy     int64 [N]       which independent fit of that image
    psnr.npy         float32 [N]     reconstruction PSNR (dB) of each fit
    splits.json      {"train": [object ids], "val": [...], "test": [...]}

Splits are by object (every view of an image lands in one split), stratified by label,
drawn with a fixed seed (:func:`make_splits`). :func:`write_store` writes everything into
a temporary directory beside the target and renames it into place, so an interrupted
write leaves the old store or none; :func:`load_store` refuses a half-written or
inconsistent directory with one clear line.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import SslWsError
from ..weights import INRSpec, WeightSpace

FORMAT = "ssl_ws.inr_store"
VERSION = 1
SPLIT_NAMES = ("train", "val", "test")
ARRAYS = {
    "params": ("params.npy", np.float32, 2),
    "labels": ("labels.npy", np.int64, 1),
    "object_ids": ("object_ids.npy", np.int64, 1),
    "view_ids": ("view_ids.npy", np.int64, 1),
    "psnr": ("psnr.npy", np.float32, 1),
}


class INRStore:
    """A loaded store; ``params`` is a read-only memory map, the rest small arrays."""

    def __init__(self, path, meta, arrays, splits):
        self.path = Path(path)
        self.meta: Dict = meta
        self.spec = INRSpec.from_dict(meta["spec"])
        self.params: np.ndarray = arrays["params"]
        self.labels: np.ndarray = arrays["labels"]
        self.object_ids: np.ndarray = arrays["object_ids"]
        self.view_ids: np.ndarray = arrays["view_ids"]
        self.psnr: np.ndarray = arrays["psnr"]
        self.splits: Dict[str, np.ndarray] = {k: np.asarray(v, dtype=np.int64) for k, v in splits.items()}

    def __len__(self) -> int:
        return int(self.params.shape[0])

    def __repr__(self) -> str:
        return f"INRStore({str(self.path)!r}, rows={len(self)}, spec=[{self.spec.describe()}])"

    @property
    def class_names(self):
        return list(self.meta.get("class_names", []))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self):
        return tuple(self.meta.get("image_size", ()))

    @property
    def channels(self) -> int:
        return int(self.meta.get("channels", self.spec.out_dim))

    @property
    def num_views(self) -> int:
        return int(self.view_ids.max()) + 1 if len(self) else 0

    def rows(self, split: str, max_views: Optional[int] = None) -> np.ndarray:
        """Sorted row indices of the objects in ``split`` (views ``< max_views`` if given)."""
        if split not in self.splits:
            raise SslWsError(f"unknown split {split!r}; this store has {sorted(self.splits)}")
        mask = np.isin(self.object_ids, self.splits[split])
        if max_views is not None:
            mask &= self.view_ids < int(max_views)
        return np.flatnonzero(mask).astype(np.int64)

    def weights(self, rows, device=None) -> WeightSpace:
        """The INRs of ``rows`` as a float32 :class:`WeightSpace` (on ``device``)."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < -len(self) or rows.max() >= len(self)):
            raise SslWsError(f"row index out of range for a store of {len(self)} rows")
        flat = torch.from_numpy(np.ascontiguousarray(self.params[rows], dtype=np.float32))
        return WeightSpace.from_flat(flat.to(device) if device is not None else flat, self.spec)


def _json_load(path: Path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise SslWsError(f"{path.parent} is not a complete INR store: {path.name} is missing") from None
    except (OSError, ValueError) as exc:
        raise SslWsError(f"corrupt {path}: {exc}") from None


def load_store(path) -> INRStore:
    """Open an INR store directory (``params.npy`` memory-mapped)."""
    path = Path(path)
    if not path.is_dir():
        hint = " (an unfinished fit? run the same command again to resume)" if Path(str(path) + ".partial").is_dir() else ""
        raise SslWsError(f"INR store not found: {path}{hint}")
    meta = _json_load(path / "meta.json")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SslWsError(f"{path}/meta.json is not an ssl_ws INR store (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if int(meta.get("version", 0)) > VERSION:
        raise SslWsError(f"{path} has store format version {meta.get('version')}; this ssl_ws reads up to {VERSION}")
    try:
        spec = INRSpec.from_dict(meta["spec"])
    except (KeyError, TypeError) as exc:
        raise SslWsError(f"{path}/meta.json has no valid spec: {exc}") from None
    arrays = {}
    for key, (fname, dtype, ndim) in ARRAYS.items():
        f = path / fname
        if not f.is_file():
            raise SslWsError(f"{path} is not a complete INR store: {fname} is missing")
        try:
            arr = np.load(f, mmap_mode="r" if key == "params" else None, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise SslWsError(f"corrupt {f}: {exc}") from None
        if arr.dtype != dtype or arr.ndim != ndim:
            raise SslWsError(f"corrupt {f}: expected {np.dtype(dtype).name} with {ndim} dims, got {arr.dtype} {arr.shape}")
        arrays[key] = arr
    n = arrays["params"].shape[0]
    if arrays["params"].shape[1] != spec.n_params:
        raise SslWsError(f"corrupt {path}: params.npy has {arrays['params'].shape[1]} columns, the spec needs {spec.n_params}")
    for key in ("labels", "object_ids", "view_ids", "psnr"):
        if len(arrays[key]) != n:
            raise SslWsError(f"corrupt {path}: {key}.npy has {len(arrays[key])} rows, params.npy {n}")
    splits = _json_load(path / "splits.json")
    if not isinstance(splits, dict) or not all(isinstance(v, list) for v in splits.values()):
        raise SslWsError(f"corrupt {path}/splits.json: expected {{split name: [object ids]}}")
    return INRStore(path, meta, arrays, splits)


def _check_arrays(params, labels, object_ids, view_ids, psnr, splits):
    n = len(params)
    if params.ndim != 2:
        raise SslWsError(f"params must be [N, P], got {params.shape}")
    for name, a in (("labels", labels), ("object_ids", object_ids), ("view_ids", view_ids), ("psnr", psnr)):
        if a.shape != (n,):
            raise SslWsError(f"{name} must have shape [{n}], got {a.shape}")
    if not np.isfinite(params).all():
        raise SslWsError("refusing to write non-finite INR parameters (a diverged fit?)")
    pairs = object_ids.astype(np.int64) * (1 << 20) + view_ids
    if len(np.unique(pairs)) != n:
        raise SslWsError("two rows share one (object id, view id)")
    seen = {}
    for name, ids in splits.items():
        for o in np.asarray(ids, dtype=np.int64).tolist():
            if o in seen:
                raise SslWsError(f"object {o} is in both split {seen[o]!r} and {name!r}")
            seen[o] = name
    missing = np.setdiff1d(np.unique(object_ids), np.fromiter(seen.keys(), dtype=np.int64, count=len(seen)))
    if missing.size:
        raise SslWsError(f"{missing.size} object(s) (e.g. {int(missing[0])}) are in no split")


def write_store(
    path,
    *,
    params,
    labels,
    object_ids,
    view_ids,
    psnr,
    splits: Mapping[str, Sequence[int]],
    meta: Mapping,
    overwrite: bool = False,
) -> Path:
    """Write a store atomically (temporary directory beside ``path``, then rename).

    ``meta`` must hold at least ``spec`` (an :class:`INRSpec` or its dict); ``format`` and
    ``version`` are added. Rows are written in the order given.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise SslWsError(f"output {path} already exists; pass --overwrite to replace it")
    meta = dict(meta)
    spec = meta.get("spec")
    if isinstance(spec, INRSpec):
        meta["spec"] = spec.to_dict()
    if "spec" not in meta:
        raise SslWsError("store metadata needs the INR spec")
    spec = INRSpec.from_dict(meta["spec"])
    params = np.ascontiguousarray(params, dtype=np.float32)
    arrays = {
        "params": params,
        "labels": np.ascontiguousarray(labels, dtype=np.int64),
        "object_ids": np.ascontiguousarray(object_ids, dtype=np.int64),
        "view_ids": np.ascontiguousarray(view_ids, dtype=np.int64),
        "psnr": np.ascontiguousarray(psnr, dtype=np.float32),
    }
    if params.shape[1:] != (spec.n_params,):
        raise SslWsError(f"params have {params.shape[1:]} columns, the spec needs {spec.n_params}")
    splits = {str(k): sorted(int(o) for o in v) for k, v in splits.items()}
    _check_arrays(arrays["params"], arrays["labels"], arrays["object_ids"], arrays["view_ids"], arrays["psnr"], splits)
    meta = {"format": FORMAT, "version": VERSION, **{k: v for k, v in meta.items() if k not in ("format", "version")}}
    meta["num_rows"] = int(len(params))

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        for key, (fname, _, _) in ARRAYS.items():
            np.save(tmp / fname, arrays[key])
        with open(tmp / "splits.json", "w") as fh:
            json.dump(splits, fh)
        with open(tmp / "meta.json", "w") as fh:
            json.dump(meta, fh, indent=2, sort_keys=True)
        os.chmod(tmp, 0o755)
        swap_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def swap_into_place(tmp: Path, path: Path) -> None:
    """Rename the finished directory ``tmp`` to ``path``; an existing ``path`` is first moved
    aside (one rename) and removed afterwards, so ``path`` never holds a half-written tree."""
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
        os.rename(path, old / "previous")
        os.rename(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, path)


def parse_split_sizes(text: Union[str, Sequence[float], None]):
    """``"0.8,0.1,0.1"`` (fractions) or ``"1000,100,200"`` (object counts) -> 3 numbers."""
    if text is None:
        return (0.8, 0.1, 0.1)
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise SslWsError(f"split sizes must be three numbers 'train,val,test', got {text!r}") from None
    if len(vals) != 3 or min(vals) < 0 or sum(vals) <= 0:
        raise SslWsError(f"split sizes must be three non-negative numbers 'train,val,test', got {text!r}")
    return tuple(vals)


def make_splits(object_ids, labels, sizes=(0.8, 0.1, 0.1), seed: int = 0) -> Dict[str, list]:
    """Stratified split of objects into train/val/test with a fixed seed.

    ``sizes`` are fractions (summing to at most 1) or object counts (any value > 1).
    Each class is shuffled by ``numpy.random.default_rng(seed)`` and cut in proportion;
    the number of objects of a class in a split is its share rounded by largest remainder.
    """
    object_ids = np.asarray(object_ids, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(object_ids)
    sizes = parse_split_sizes(sizes) if isinstance(sizes, str) else tuple(float(s) for s in sizes)
    if max(sizes) <= 1.0:
        if sum(sizes) > 1.0 + 1e-9:
            raise SslWsError(f"split fractions sum to {sum(sizes):g} > 1")
        frac = np.array(sizes)
    else:
        if sum(sizes) > n:
            raise SslWsError(f"split sizes {sizes} ask for {int(sum(sizes))} objects, the data set has {n}")
        frac = np.array(sizes) / n
    rng = np.random.default_rng(seed)
    out = {k: [] for k in SPLIT_NAMES}
    for cls in np.unique(labels):
        members = object_ids[labels == cls]
        members = members[rng.permutation(len(members))]
        want = frac * len(members)
        counts = np.floor(want).astype(int)
        rem = int(round(min(frac.sum(), 1.0) * len(members))) - counts.sum()
        for j in np.argsort(-(want - counts), kind="stable")[: max(rem, 0)]:
            counts[j] += 1
        start = 0
        for name, c in zip(SPLIT_NAMES, counts):
            out[name].extend(members[start : start + c].tolist())
            start += c
    return {k: sorted(v) for k, v in out.items()}
