"""The INR store: a directory of INRs that numpy alone can read (layout below and in the README).

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

import functools
import json
import os
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from ..atomic import atomic_directory, atomic_write
from ..errors import SslWsError
from ..files import regular_file
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

    @functools.cached_property
    def num_classes(self) -> int:
        """Classes: the number of class names in meta.json, else the largest label + 1 (labels
        are checked to lie in ``[0, num_classes)`` when the store is loaded)."""
        n = len(self.class_names)
        if not n and len(self.labels):
            n = int(np.max(self.labels)) + 1
        return n

    @property
    def label_names(self):
        """A name for every label ``0 .. num_classes - 1``: meta.json's class names, padded with label numbers."""
        names = self.class_names
        return names + [str(i) for i in range(len(names), self.num_classes)]

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

    def select(self, split: str, max_views: Optional[int] = None, per_class: Optional[int] = None,
               seed: int = 0) -> np.ndarray:
        """Sorted rows of ``split`` (views ``< max_views``), restricted to ``per_class`` objects per class when
        given (every view of a chosen object; :func:`sample_per_class`, a draw fixed by ``seed``)."""
        rows = self.rows(split, max_views=max_views)
        if per_class is None:
            return rows
        return rows[sample_per_class(self.labels[rows], self.object_ids[rows], int(per_class), seed)]

    def weights(self, rows, device=None) -> WeightSpace:
        """The INRs of ``rows`` as a float32 :class:`WeightSpace` (on ``device``)."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < -len(self) or rows.max() >= len(self)):
            raise SslWsError(f"row index out of range for a store of {len(self)} rows")
        flat = torch.from_numpy(np.ascontiguousarray(self.params[rows], dtype=np.float32))
        return WeightSpace.from_flat(flat.to(device) if device is not None else flat, self.spec)


#: the largest meta.json / splits.json read (splits.json: about 7 million object ids)
JSON_LIMITS = {"meta.json": 16 << 20, "splits.json": 64 << 20}


def _json_load(path: Path):
    from ..files import read_json

    if not os.path.lexists(path):
        raise SslWsError(f"{path.parent} is not a complete INR store: {path.name} is missing")
    return read_json(path, f"{path.parent}/{path.name}", limit=JSON_LIMITS.get(path.name, 64 << 20))


# ------------------------------------------------------------------ labelled subsets
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


# ---------------------------------------------------------------------------- validation
#: files whose size / mtime / ctime / inode key the cached result of :func:`check_store`
STORE_FILES = ("meta.json", "splits.json") + tuple(f for f, _, _ in ARRAYS.values())
CHECKS_FILE = "checks.json"
CHECKS_FORMAT = "ssl_ws.store_checks"
CHECKS_VERSION = 2  # bump when check_contents checks more or the key changes: older caches are then ignored
RACY_NS = 2_000_000_000  # a file modified less than this before a scan may change unseen (mtime granularity)
SCAN_BYTES = 1 << 26  # params.npy is scanned in blocks of about this many bytes (64 MiB)


def first_nonfinite_row(params: np.ndarray, block_bytes: int = SCAN_BYTES) -> Optional[int]:
    """Index of the first row of ``params`` ``[N, P]`` holding a NaN or an Inf, or None.

    Reads ``params`` (a memory map is fine) in blocks of whole rows of about ``block_bytes``,
    so a store of any size is scanned with bounded memory, at the speed of reading it once.
    """
    n = int(params.shape[0])
    width = max(1, int(np.prod(params.shape[1:], dtype=np.int64)) * params.dtype.itemsize)
    step = max(1, int(block_bytes) // width)
    for lo in range(0, n, step):
        ok = np.isfinite(np.asarray(params[lo : lo + step])).reshape(min(step, n - lo), -1).all(axis=1)
        if not ok.all():
            return lo + int(np.argmin(ok))
    return None


def _split_ids(splits) -> Dict[str, np.ndarray]:
    """``splits.json``'s content as ``{name: int64 ids}``; anything else is one clear error."""
    if not isinstance(splits, dict):
        raise SslWsError("splits.json must hold {split name: [object ids]}")
    out = {}
    for name, ids in splits.items():
        if not isinstance(ids, list):
            raise SslWsError(f"splits.json: split {name!r} must be a list of object ids, got {type(ids).__name__}")
        try:
            arr = np.asarray(ids) if ids else np.zeros(0, np.int64)
        except (ValueError, OverflowError):  # ragged nesting, say
            arr = np.asarray(ids, dtype=object)
        if arr.dtype.kind not in "iu" or arr.ndim != 1 or any(x is True or x is False for x in ids):
            bad = next((x for x in ids if isinstance(x, bool) or not isinstance(x, int)), ids[0] if ids else None)
            what = "beyond int64" if isinstance(bad, int) and not isinstance(bad, bool) else "not an integer object id"
            raise SslWsError(f"splits.json: split {name!r} holds {bad!r}, {what}")
        out[str(name)] = arr.astype(np.int64)
    return out


def check_contents(params, labels, object_ids, view_ids, splits: Mapping[str, np.ndarray], num_classes: int) -> None:
    """Everything a store promises beyond its shapes; raises one :class:`SslWsError` line
    naming the file and the first bad row (the caller prefixes the store's path).

    * ``params.npy`` finite (:func:`first_nonfinite_row`, chunked: O(N P) once);
    * ``labels.npy`` in ``[0, num_classes)`` (only ``>= 0`` when meta.json names no classes);
    * object and view ids non-negative, no two rows with one (object, view), every view of an
      object with the object's label;
    * ``splits.json``: no object in two splits or twice in one, every listed object stored,
      every stored object in a split (so train and test never share an object).

    Everything but the params scan is O(N log N) work on the small integer arrays.
    """
    labels = np.asarray(labels)
    object_ids = np.asarray(object_ids)
    view_ids = np.asarray(view_ids)
    for fname, arr, what in (("object_ids.npy", object_ids, "object id"), ("view_ids.npy", view_ids, "view id")):
        if arr.size and arr.min() < 0:
            r = int(np.argmax(arr < 0))
            raise SslWsError(f"{fname} row {r} has a negative {what} ({int(arr[r])})")
    if labels.size:
        hi = int(num_classes) if num_classes else None
        bad = (labels < 0) | (labels >= hi) if hi else labels < 0
        if bad.any():
            r = int(np.argmax(bad))
            rng = f"[0, {hi}) (meta.json names {hi} classes)" if hi else "[0, inf)"
            raise SslWsError(f"labels.npy row {r} has label {int(labels[r])}, outside {rng}")
    if len(object_ids):
        order = np.lexsort((view_ids, object_ids))
        same = (np.diff(object_ids[order]) == 0) & (np.diff(view_ids[order]) == 0)
        if same.any():
            j = int(np.argmax(same))
            a, b = sorted((int(order[j]), int(order[j + 1])))
            raise SslWsError(f"rows {a} and {b} are both object {int(object_ids[a])}, view {int(view_ids[a])} "
                             f"(object_ids.npy / view_ids.npy)")
        if labels.size == object_ids.size:
            same_obj = np.diff(object_ids[order]) == 0
            differ = same_obj & (np.diff(labels[order]) != 0)
            if differ.any():
                j = int(np.argmax(differ))
                a, b = sorted((int(order[j]), int(order[j + 1])))
                raise SslWsError(f"labels.npy rows {a} and {b} are views of object {int(object_ids[a])} "
                                 f"but have labels {int(labels[a])} and {int(labels[b])}")
    names = list(splits)
    all_ids = np.concatenate([np.asarray(splits[k], dtype=np.int64) for k in names]) if names else np.zeros(0, np.int64)
    owner = np.repeat(np.arange(len(names)), [len(splits[k]) for k in names])
    if all_ids.size:
        order = np.argsort(all_ids, kind="stable")
        dup = np.diff(all_ids[order]) == 0
        if dup.any():
            j = int(np.argmax(dup))
            o, a, b = int(all_ids[order[j]]), names[owner[order[j]]], names[owner[order[j + 1]]]
            raise SslWsError(f"splits.json: object {o} is in both split {a!r} and {b!r}" if a != b
                             else f"splits.json: object {o} is listed twice in split {a!r}")
    stored = np.unique(object_ids)
    unknown = ~np.isin(all_ids, stored)
    if unknown.any():
        j = int(np.argmax(unknown))
        raise SslWsError(f"splits.json: split {names[owner[j]]!r} lists object {int(all_ids[j])}, "
                         f"which has no row in the store ({int(unknown.sum())} such id(s))")
    orphan = ~np.isin(object_ids, all_ids)
    if orphan.any():
        r = int(np.argmax(orphan))
        raise SslWsError(f"object {int(object_ids[r])} (row {r}) is in no split of splits.json "
                         f"({len(np.unique(object_ids[orphan]))} such object(s))")
    r = first_nonfinite_row(params)
    if r is not None:
        raise SslWsError(f"params.npy row {r} (object {int(object_ids[r])}, view {int(view_ids[r])}) "
                         f"holds non-finite parameters (NaN or Inf)")


def _files_key(path: Path) -> Optional[Dict[str, list]]:
    try:
        return {f: [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns] for f in STORE_FILES for st in [os.stat(path / f)]}
    except OSError:
        return None


def _cache_paths(path: Path):
    """Where the result of a scan is kept: ``STORE/checks.json``, else (a read-only store) the
    user's cache directory, one file per store path."""
    import hashlib

    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    return [path / CHECKS_FILE, home / "ssl_ws" / "store-checks" / f"{digest}.json"]


def _cached_ok(path: Path, key) -> bool:
    from ..files import read_json

    for p in _cache_paths(path):
        if not p.exists():
            continue
        try:  # a record that is not a small regular JSON file (a FIFO, say) is no record
            c = read_json(p, "checks.json", limit=1 << 20)
        except SslWsError:
            continue
        if (isinstance(c, dict) and c.get("format") == CHECKS_FORMAT and c.get("version") == CHECKS_VERSION
                and c.get("ok") is True and c.get("files") == key):
            return True
    return False


def _write_cache(path: Path, key, checked_ns: int, seconds: float) -> Optional[Path]:
    record = {"format": CHECKS_FORMAT, "version": CHECKS_VERSION, "ok": True, "files": key,
              "checked_ns": checked_ns, "seconds": round(seconds, 3),
              "what": "params finite, labels in range and one per object, unique (object, view), "
                      "splits disjoint and exactly the stored objects"}
    for p in _cache_paths(path):
        try:
            with atomic_write(p) as fh:
                json.dump(record, fh, indent=1)
            return p
        except OSError:  # read-only store: try the next place (atomic_write left nothing behind)
            continue
    return None


def check_store(store: "INRStore", *, use_cache: bool = True) -> Dict:
    """Validate ``store``'s contents (:func:`check_contents`) unless a cached record says
    that these very files passed already; raises ``SslWsError("corrupt store PATH: ...")``.

    The record (``checks.json`` in the store, or in the user's cache directory when the
    store is read-only) is keyed by the size, mtime, inode and ctime of every store file, so any
    rewrite of a file makes the next load scan again -- also one whose mtime was set back
    afterwards (``os.utime`` moves the ctime, which no user call sets). A record is only written when every
    file is older than ``RACY_NS`` at the start of the scan (a file modified within the
    mtime granularity could change without changing its key): a store loaded in the first
    seconds after it was written is scanned each time, then once more, then never.

    Returns ``{"cached": bool, "seconds": float, "rows": N, "record": path or None}``.
    """
    import time

    path = store.path
    key = _files_key(path)
    if use_cache and key is not None and _cached_ok(path, key):
        return {"cached": True, "seconds": 0.0, "rows": len(store), "record": None}
    start_ns = time.time_ns()
    t0 = time.perf_counter()
    try:
        check_contents(store.params, store.labels, store.object_ids, store.view_ids, store.splits, store.num_classes)
    except SslWsError as exc:
        raise SslWsError(f"corrupt store {path}: {exc}") from None
    except (OSError, ValueError) as exc:  # a memory-mapped file cut short under our feet, say
        raise SslWsError(f"corrupt store {path}: cannot read it ({' '.join(str(exc).split())})") from None
    seconds = time.perf_counter() - t0
    record = None
    if key is not None and all(v[1] < start_ns - RACY_NS for v in key.values()) and _files_key(path) == key:
        record = _write_cache(path, key, start_ns, seconds)
    return {"cached": False, "seconds": seconds, "rows": len(store), "record": str(record) if record else None}


MAX_IMAGE_SIDE = 8192  # pixels per side of the images a store's INRs render


def _check_meta(path: Path, meta: Dict) -> None:
    names = meta.get("class_names", [])
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        raise SslWsError(f"corrupt {path}/meta.json: class_names must be a list of strings")
    size = meta.get("image_size", [])
    if not isinstance(size, list) or len(size) not in (0, 2) or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 < s <= MAX_IMAGE_SIDE for s in size):
        raise SslWsError(f"corrupt {path}/meta.json: image_size must be [height, width] of 1 to {MAX_IMAGE_SIDE} "
                         f"pixels each, got {str(size)[:80]}")
    ch = meta.get("channels", 1)
    if not isinstance(ch, int) or isinstance(ch, bool) or ch < 1:
        raise SslWsError(f"corrupt {path}/meta.json: channels must be a positive integer, got {ch!r}")
    if meta.get("num_rows") is not None and not isinstance(meta["num_rows"], int):
        raise SslWsError(f"corrupt {path}/meta.json: num_rows must be an integer, got {meta['num_rows']!r}")


def load_store(path, *, check: str = "cached") -> INRStore:
    """Open an INR store directory (``params.npy`` memory-mapped) and validate it.

    Shapes, dtypes and metadata are checked on every load (O(1)). The contents
    (:func:`check_contents`: finite params, labels in range, disjoint splits of stored
    objects) are checked by :func:`check_store`: ``check="cached"`` (default) scans once and
    trusts the cached record while the files are unchanged; ``"full"`` always scans (what
    ``ssl-ws info --check`` does); ``"none"`` skips it (to inspect or repair a corrupt store).
    A failed check is one ``SslWsError`` line naming the file and the first bad row.
    """
    if check not in ("cached", "full", "none"):
        raise ValueError(f"check must be 'cached', 'full' or 'none', got {check!r}")
    path = Path(path)
    if not path.is_dir():
        hint = " (an unfinished fit? run the same command again to resume)" if Path(str(path) + ".partial").is_dir() else ""
        raise SslWsError(f"INR store not found: {path}{hint}")
    meta = _json_load(path / "meta.json")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SslWsError(f"{path}/meta.json is not an ssl_ws INR store (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    try:
        version = int(meta.get("version", 0))
    except (TypeError, ValueError):
        raise SslWsError(f"corrupt {path}/meta.json: version {meta.get('version')!r} is not a number") from None
    if version > VERSION:
        raise SslWsError(f"{path} has store format version {meta.get('version')}; this ssl_ws reads up to {VERSION}")
    try:
        spec = INRSpec.from_dict(meta["spec"])
    except SslWsError as exc:
        raise SslWsError(f"corrupt {path}/meta.json: spec: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise SslWsError(f"{path}/meta.json has no valid spec: {exc!r}") from None
    _check_meta(path, meta)
    arrays = {}
    for key, (fname, dtype, ndim) in ARRAYS.items():
        f = path / fname
        if not os.path.lexists(f):
            raise SslWsError(f"{path} is not a complete INR store: {fname} is missing")
        regular_file(f, f"{path.name}/{fname}")
        try:
            arr = np.load(f, mmap_mode="r", allow_pickle=False)  # shapes checked before anything is read
        except (OSError, ValueError, EOFError) as exc:
            raise SslWsError(f"corrupt {f}: {' '.join(str(exc).split())}") from None
        if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.ndim != ndim:
            raise SslWsError(f"corrupt {f}: expected {np.dtype(dtype).name} with {ndim} dims, "
                             f"got {getattr(arr, 'dtype', type(arr).__name__)} {getattr(arr, 'shape', '')}")
        arrays[key] = arr
    n = arrays["params"].shape[0]
    if arrays["params"].shape[1] != spec.n_params:
        raise SslWsError(f"corrupt {path}: params.npy has {arrays['params'].shape[1]} columns, the spec needs {spec.n_params}")
    for key in ("labels", "object_ids", "view_ids", "psnr"):
        if len(arrays[key]) != n:
            raise SslWsError(f"corrupt {path}: {key}.npy has {len(arrays[key])} rows, params.npy {n}")
        arrays[key] = np.array(arrays[key])  # the per-row arrays in memory; params stays memory-mapped
    if meta.get("num_rows") is not None and int(meta["num_rows"]) != n:
        raise SslWsError(f"corrupt {path}: meta.json says {meta['num_rows']} rows, params.npy has {n}")
    try:
        splits = _split_ids(_json_load(path / "splits.json"))
    except SslWsError as exc:
        raise SslWsError(f"corrupt {path}/{exc}" if str(exc).startswith("splits.json") else str(exc)) from None
    store = INRStore(path, meta, arrays, splits)
    if check != "none":
        check_store(store, use_cache=check == "cached")
    return store


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
    n = len(params)
    for name in ("labels", "object_ids", "view_ids", "psnr"):
        if arrays[name].shape != (n,):
            raise SslWsError(f"{name} must have shape [{n}], got {arrays[name].shape}")
    names = meta.get("class_names") or []
    try:  # the checks load_store makes, so that a store that loads is never written wrong
        check_contents(arrays["params"], arrays["labels"], arrays["object_ids"], arrays["view_ids"],
                       {k: np.asarray(v, dtype=np.int64) for k, v in splits.items()}, len(names))
    except SslWsError as exc:
        raise SslWsError(f"refusing to write {path}: {exc}") from None
    meta = {"format": FORMAT, "version": VERSION, **{k: v for k, v in meta.items() if k not in ("format", "version")}}
    meta["num_rows"] = int(len(params))

    with atomic_directory(path) as tmp:
        for key, (fname, _, _) in ARRAYS.items():
            np.save(tmp / fname, arrays[key])
        with open(tmp / "splits.json", "w") as fh:
            json.dump(splits, fh)
        with open(tmp / "meta.json", "w") as fh:
            json.dump(meta, fh, indent=2, sort_keys=True)
    return path


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
