"""Import published INR data sets (one ``.pth`` state dict per INR) into an INR store.

Layouts: **DWSNets** (Navon et al., ICML 2023): ``splits.json`` of ``{"train": {"path": [...],
"label": [...]}, "val": ..., "test": ...}``, one INR per object (view 0). **Multi-view**
(Shamsian et al., ICML 2024): ``splits.json`` of ``{"train": [paths], ...}``, the label in each
state dict's ``label`` entry, views grouped by path: a path part ``view[s][_-]<k>`` (any case)
is view ``k`` of the path with that part as ``view*``; else the last run of digits is the view
id (``img_12/3.pth`` -> object ``img_12/*.pth``, view 3); ``view_pattern`` (a regex, one group,
last match) overrides both. All views of an object share one label and one split.

Paths: absolute, relative to the splits file's directory (or one of its two parents), or to
the working directory. ``torch.load(..., weights_only=True)`` (only plain tensors); one
architecture for all INRs (``seq.{i}.weight`` / ``seq.{i}.bias``).

Coordinates: DWSNets' ``np.meshgrid(linspace(-1,1,H), linspace(-1,1,W))`` ('xy') puts pixel (row
r, column c) at ``(x, y) = (lin[c], lin[r])``, ssl_ws's convention for square images
(:func:`~ssl_ws.inr.render.image_coordinates`): weights import unchanged. ``swap_xy=True`` swaps
the first layer's input columns (INRs fitted on an 'ij' grid; exact, recorded in ``meta.json``).
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import SslWsError
from ..files import regular_file
from ..weights import INRSpec, WeightSpace, spec_from_state_dict

STATE_DICT_LIMIT = 4 << 30  # bytes of one INR state dict file

LAYOUTS = ("dwsnets", "multiview")
_VIEW_WORD = re.compile(r"(?i)views?[_-]?(\d+)")
_DIGITS = re.compile(r"\d+")


def _find_splits(src) -> Path:
    src = Path(src)
    if src.is_file():
        return src
    if src.is_dir():
        cands = sorted(src.glob("*splits*.json")) or sorted(src.glob("*.json"))
        if len(cands) == 1:
            return cands[0]
        if not cands:
            raise SslWsError(f"{src}: no splits .json file found; pass the splits file itself")
        raise SslWsError(f"{src}: several .json files ({', '.join(c.name for c in cands)}); pass the splits file itself")
    raise SslWsError(f"import source not found: {src}")


def _resolve(path: str, base: Path) -> Optional[Path]:
    p = Path(path)
    if p.is_absolute():
        return p if p.is_file() else None
    for root in (base, base.parent, base.parent.parent, Path.cwd()):
        q = root / p
        if q.is_file():
            return q
    return None


def load_state_dict(path) -> Dict[str, torch.Tensor]:
    """One INR state dict, plain tensors only (``weights_only=True``)."""
    regular_file(path, "state dict", STATE_DICT_LIMIT)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError, TypeError, KeyError,
            IndexError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise SslWsError(f"cannot load {path} as a plain-tensor state dict (weights_only=True): "
                         f"{type(exc).__name__}{': ' + first[:200] if first else ''}") from None
    if hasattr(sd, "state_dict") and not isinstance(sd, dict):
        raise SslWsError(f"{path} holds a module, not a state dict")
    if not isinstance(sd, dict):
        raise SslWsError(f"{path} does not hold a state dict (got {type(sd).__name__})")
    return sd


def _label_of(sd, path) -> int:
    if "label" not in sd:
        raise SslWsError(f"{path} has no 'label' entry (the multi-view layout keeps the label in each state dict)")
    lab = sd["label"]
    try:
        lab = int(lab.item()) if torch.is_tensor(lab) else int(lab)
    except (ValueError, TypeError, RuntimeError):
        raise SslWsError(f"{path}: 'label' must be one integer, got {lab!r}") from None
    return lab


def parse_view(path: str, view_pattern: Optional[str] = None) -> Tuple[str, int]:
    """``(object key, view id)`` of a multi-view path (rules in the module docstring)."""
    norm = path.replace("\\", "/")
    stem = re.sub(r"\.(pth|pt|ckpt)$", "", norm)
    if view_pattern:
        ms = list(re.finditer(view_pattern, stem))
        if not ms or not ms[-1].groups():
            raise SslWsError(f"--view-pattern {view_pattern!r} (one group of digits) does not match {path!r}")
        m = ms[-1]
        return stem[: m.start(1)] + "*" + stem[m.end(1) :], int(m.group(1))
    ms = list(_VIEW_WORD.finditer(stem))
    if ms:
        m = ms[-1]
        return stem[: m.start()] + "view*" + stem[m.end() :], int(m.group(1))
    ms = list(_DIGITS.finditer(stem))
    if not ms:
        raise SslWsError(f"cannot parse a view id from {path!r}: it has no number (use --view-pattern)")
    m = ms[-1]
    return stem[: m.start()] + "*" + stem[m.end() :], int(m.group())


def read_layout(src, layout: str, view_pattern: Optional[str] = None):
    """Rows of a published data set: (files, labels or None, object keys, view ids, split names)."""
    if layout not in LAYOUTS:
        raise SslWsError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    sp = _find_splits(src)
    from ..files import read_json

    splits = read_json(sp, "splits file")
    if not isinstance(splits, dict) or not splits:
        raise SslWsError(f"{sp}: expected a JSON object of splits")
    paths, labels, split_of = [], [], []
    for name, entry in splits.items():
        if layout == "dwsnets":
            if not isinstance(entry, dict) or "path" not in entry or "label" not in entry:
                raise SslWsError(f"{sp}: split {name!r} must be {{'path': [...], 'label': [...]}} in the DWSNets layout")
            if len(entry["path"]) != len(entry["label"]):
                raise SslWsError(f"{sp}: split {name!r} has {len(entry['path'])} paths but {len(entry['label'])} labels")
            paths += list(entry["path"])
            bad = next((x for x in entry["label"] if isinstance(x, bool) or not isinstance(x, int)
                        and not (isinstance(x, float) and x.is_integer())), None)
            if bad is not None:
                raise SslWsError(f"{sp}: split {name!r} holds label {bad!r}; labels must be integers (class ids)")
            labels += [int(x) for x in entry["label"]]
        else:
            if not isinstance(entry, list):
                raise SslWsError(f"{sp}: split {name!r} must be a list of paths in the multi-view layout"
                                 + (" (this looks like the DWSNets layout)" if isinstance(entry, dict) else ""))
            paths += [str(p) for p in entry]
        split_of += [name] * (len(paths) - len(split_of))
    if not paths:
        raise SslWsError(f"{sp} lists no INR files")
    files, missing = [], []
    for p in paths:
        f = _resolve(p, sp.parent)
        (missing.append(p) if f is None else files.append(f))
    if missing:
        raise SslWsError(f"{len(missing)} of {len(paths)} files named in {sp} are missing (e.g. {missing[0]!r})")
    if layout == "dwsnets":
        keys = [str(p) for p in paths]
        views = [0] * len(paths)
    else:
        parsed = [parse_view(str(p), view_pattern) for p in paths]
        keys, views = [k for k, _ in parsed], [v for _, v in parsed]
    return sp, files, (labels if layout == "dwsnets" else None), keys, views, split_of


def import_inrs(
    src,
    layout: str,
    *,
    image_size: Tuple[int, int] = (28, 28),
    w0: float = 30.0,
    output_offset: float = 0.5,
    swap_xy: bool = False,
    view_pattern: Optional[str] = None,
    class_names: Optional[Sequence[str]] = None,
    progress=None,
) -> Dict:
    """Read a published data set; returns the keyword arguments of :func:`write_store`."""
    sp, files, labels, keys, views, split_of = read_layout(src, layout, view_pattern)
    flats, spec, lab_out = [], None, []
    batch: List[Dict] = []

    def flush():
        nonlocal batch
        if batch:
            ws = WeightSpace.from_state_dicts(batch, spec)
            if swap_xy:
                w = ws.weights[0].flip(-1)
                ws = ws.replace(weights=(w,) + tuple(ws.weights[1:]))
            flats.append(ws.to_flat().numpy().astype(np.float32))
            batch = []

    for i, f in enumerate(files):
        sd = load_state_dict(f)
        try:
            this = spec_from_state_dict(sd, activation="sine", w0=w0, output_offset=output_offset)
        except SslWsError as exc:
            raise SslWsError(f"{f}: {exc}") from None
        if spec is None:
            spec = this
            if spec.in_dim != 2:
                raise SslWsError(f"{f}: INRs of images take 2 input coordinates, this one takes {spec.in_dim}")
        elif this.layer_sizes != spec.layer_sizes:
            raise SslWsError(f"{f} has architecture {this.layer_sizes}, the first INR {spec.layer_sizes}: "
                             "every INR must share one architecture")
        if layout == "multiview":
            lab_out.append(_label_of(sd, f))
        batch.append(sd)
        if len(batch) >= 1024:
            flush()
        if progress is not None:
            progress(i + 1, len(files))
    flush()
    params = np.concatenate(flats)
    if not np.isfinite(params).all():
        bad = int((~np.isfinite(params).all(axis=1)).sum())
        raise SslWsError(f"{bad} INR(s) in {sp} have non-finite parameters")
    labels = np.asarray(labels if layout == "dwsnets" else lab_out, dtype=np.int64)
    if (labels < 0).any():
        raise SslWsError(f"{sp}: labels must be non-negative")

    # objects in order of first appearance; one split and one label per object
    obj_index: Dict[str, int] = {}
    obj_split: Dict[int, str] = {}
    obj_label: Dict[int, int] = {}
    object_ids = np.empty(len(files), dtype=np.int64)
    for r, (k, s, lab) in enumerate(zip(keys, split_of, labels.tolist())):
        o = obj_index.setdefault(k, len(obj_index))
        object_ids[r] = o
        if obj_split.setdefault(o, s) != s:
            raise SslWsError(f"views of one object ({k}) are in splits {obj_split[o]!r} and {s!r}")
        if obj_label.setdefault(o, lab) != lab:
            raise SslWsError(f"views of one object ({k}) have labels {obj_label[o]} and {lab}")
    view_ids = np.asarray(views, dtype=np.int64)
    pair = object_ids * (1 << 20) + view_ids
    if len(np.unique(pair)) != len(pair):
        dup = int(np.flatnonzero(np.bincount(np.unique(pair, return_inverse=True)[1]) > 1)[0])
        raise SslWsError(f"two files map to one (object, view); e.g. object {list(obj_index)[int(np.unique(pair)[dup] >> 20)]!r}"
                         " -- pass --view-pattern")
    order = np.lexsort((view_ids, object_ids))
    splits: Dict[str, List[int]] = {}
    for o, s in obj_split.items():
        splits.setdefault(s, []).append(o)
    n_classes = int(labels.max()) + 1
    names = list(class_names) if class_names else [str(i) for i in range(n_classes)]
    if len(names) < n_classes:
        raise SslWsError(f"{len(names)} class names given for {n_classes} classes")
    meta = {
        "spec": spec.to_dict(),
        "class_names": names,
        "image_size": list(image_size),
        "channels": spec.out_dim,
        "num_views": int(view_ids.max()) + 1,
        "source": {"name": f"import:{layout}", "path": str(sp.resolve()), "files": len(files)},
        "fit": None,
        "imported": {
            "layout": layout,
            "view_parse": "dwsnets: one view per object" if layout == "dwsnets" else (view_pattern or "default rules"),
            "coordinate_convention": "DWSNets: np.meshgrid(linspace(-1,1,H), linspace(-1,1,W)) ('xy'), row-major -- "
                                     "same as ssl_ws for square images",
            "swapped_xy": bool(swap_xy),
        },
        "coordinates": "pixel (row r, col c) at (x, y) = (linspace(-1,1,W)[c], linspace(-1,1,H)[r]), row-major",
    }
    return dict(
        params=params[order], labels=labels[order], object_ids=object_ids[order], view_ids=view_ids[order],
        psnr=np.full(len(order), np.nan, dtype=np.float32), splits=splits, meta=meta,
    )
