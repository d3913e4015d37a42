"""Querying a retrieval index: by store row id, or by a new image.

A query embedding ``q`` is found as follows:

* ``--id ROW`` of an indexed row: its stored embedding (no encoder needed);
* ``--id ROW`` of a store row that is not indexed: the row's weights embedded by the
  index's encoder;
* ``--image PNG``: the image is fitted to ``views`` INRs with the store's own
  recipe (:func:`~ssl_ws.inr.fit.fit_like_store`), each embedded by the index's
  encoder; ``q`` is the mean of their L2-normalized embeddings.

The encoder is the one recorded in ``index.json`` or a checkpoint given by the user;
either way its identity digest must equal the one the index was built with, or the
query embeddings would live in another space than the indexed ones.

``ssl-ws query``'s steps are functions here: :func:`answer_one` (one row or image, described),
:func:`neighbour_table`, :func:`write_answer` (``--json``), :func:`answer_image_folder`,
:func:`read_ids` (``--ids-file``) and :func:`write_jsonl`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from ..errors import SslWsError
from .index import RetrievalIndex, check_index_store, index_encoder  # noqa: F401 (index_encoder: part of this module's API)
from ..eval.knn import l2_normalize


def index_store(index: RetrievalIndex, store_path: Optional[str] = None):
    """The store the index was built from (or ``store_path``), checked to have its row count."""
    from ..data import load_store

    info = index.info.get("store", {})
    path = store_path or info.get("path")
    cached = getattr(index, "_checked_store", None)
    if cached is not None and cached[0] == path:  # loaded and checked once per index
        return cached[1]
    if not path or not os.path.exists(path):
        raise SslWsError(f"the index's store {path} is not there; pass its current location with --store")
    store = load_store(path)
    if info.get("rows") is not None and int(store.params.shape[0]) != int(info["rows"]):
        raise SslWsError(f"store {path} has {store.params.shape[0]} rows but the index was built from one of {info['rows']}")
    want = info.get("spec")
    if isinstance(want, dict) and store.spec.to_dict() != want:
        from ..weights import INRSpec

        try:
            built = INRSpec.from_dict(want).describe()
        except (TypeError, ValueError, KeyError, SslWsError):  # a hand-edited record: name it as written
            built = want
        raise SslWsError(f"store {path} holds INRs {store.spec.describe()}, but the index was built from a store "
                         f"of INRs {built}; pass the store it was built from with --store")
    check_index_store(index, store, path)
    index._checked_store = (path, store)
    return store


def check_recorded_store(index: RetrievalIndex) -> None:
    """Where the index's store is still at its recorded path, refuse to answer when it changed since the
    index was built (the answers would name rows that now hold other INRs); an index whose store has
    moved away answers from its own record."""
    path = (index.info.get("store") or {}).get("path")
    if path and os.path.isdir(path):
        index_store(index)


def check_row(index: RetrievalIndex, row: int) -> None:
    n = index.info.get("store", {}).get("rows")
    if row < 0 or (n is not None and row >= int(n)):
        raise SslWsError(f"row id {row} is out of range: the store has rows 0..{int(n) - 1}" if n else f"row id {row} is negative")


def load_image(path: str, channels: int, size: Tuple[int, int], resize: bool = False) -> torch.Tensor:
    """An image file as ``[1, C, H, W]`` in [0, 1], checked against the store's channels and size.

    A grayscale store accepts an RGB(A) image whose channels are all equal (a gray
    picture saved as colour); a colour image is an error. A size other than the
    store's is an error unless ``resize`` (bilinear, antialiased).
    """
    from ..files import open_image

    if not os.path.lexists(path):
        raise SslWsError(f"no such image: {path}")
    return image_tensor(open_image(path), f"image {path}", channels, size, resize)


def image_tensor(img, name: str, channels: int, size: Tuple[int, int], resize: bool = False) -> torch.Tensor:
    """A decoded Pillow image as ``[1, C, H, W]`` in [0, 1] (see :func:`load_image`); ``name`` names it
    in errors ("image x.png", "images[2]")."""
    path = name
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit: full scale is 65535, whatever the values
        arr = np.asarray(img, dtype=np.float64)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise SslWsError(f"{path} holds integers outside 0..65535 ({arr.min():g}..{arr.max():g}); "
                             "save it as an 8- or 16-bit image")
        arr = (arr / 65535.0)[None]
    else:
        if img.mode not in ("L", "1", "LA", "RGB", "RGBA", "P", "CMYK", "YCbCr", "F"):
            raise SslWsError(f"{path} has unsupported mode {img.mode}")
        if img.mode == "F":  # floating point: taken as intensities in [0, 1], nothing else is guessed
            arr = np.asarray(img, dtype=np.float64)[None]
            if not np.isfinite(arr).all() or (arr.size and (arr.min() < 0 or arr.max() > 1)):
                raise SslWsError(f"{path} is floating point with values outside [0, 1] "
                                 f"({np.nanmin(arr):g}..{np.nanmax(arr):g}); scale it to [0, 1] or save it as 8-bit")
        elif img.mode in ("L", "1", "LA"):
            arr = np.asarray(img.convert("L"), dtype=np.float64)[None] / 255.0
        else:
            arr = np.asarray(img.convert("RGB"), dtype=np.float64).transpose(2, 0, 1) / 255.0
    have = arr.shape[0]
    if have == 3 and channels == 1:
        if not (np.allclose(arr[0], arr[1]) and np.allclose(arr[0], arr[2])):
            raise SslWsError(f"{path} is in colour (3 channels) but the store's INRs are grayscale (1 channel); convert it to grayscale")
        arr = arr[:1]
    elif have != channels:
        raise SslWsError(f"{path} has {have} channel(s) but the store's INRs output {channels}")
    h, w = int(size[0]), int(size[1])
    t = torch.from_numpy(arr.astype(np.float32))[None]
    if tuple(t.shape[2:]) != (h, w):
        if not resize:
            raise SslWsError(
                f"{path} is {t.shape[2]}x{t.shape[3]} (HxW) but the store's INRs were fitted to {h}x{w}; "
                "resize it or pass --resize"
            )
        t = torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear", align_corners=True, antialias=True)
    return t.clamp(0.0, 1.0)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def image_files(folder: str) -> List[str]:
    """The image files directly inside ``folder`` (by suffix), sorted by name; none is an error."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise SslWsError(f"cannot read the image folder {folder}: {exc.strerror or exc}") from None
    files = [os.path.join(folder, n) for n in names
             if n.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(folder, n))]
    if not files:
        raise SslWsError(f"{folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def embed_images(index: RetrievalIndex, images: torch.Tensor, model, store, views: int = 1, device=None):
    """Fit ``images`` ``[B, C, H, W]`` with the store's recipe (all ``B * views`` INRs in one batched
    fit); return (query embeddings ``[B, D]``: each image's L2-normalized view embeddings
    averaged, the fitted WeightSpace, image-major)."""
    from ..inr.fit import fit_like_store
    from ..eval.embed import embed_weights

    if views < 1:
        raise SslWsError(f"--views must be positive, got {views}")
    ws = fit_like_store(store.meta, images, views=views, device=device, resize=False)
    emb = l2_normalize(embed_weights(model, ws, device=device))
    return emb.reshape(len(images), views, -1).mean(axis=1), ws


def embed_row(index: RetrievalIndex, row: int, model=None, store=None, device=None) -> np.ndarray:
    """The embedding of store row ``row``: stored when indexed, else computed."""
    check_row(index, row)
    pos = index.position_of_row(row)
    if pos is not None:
        return index.emb[pos]
    from ..eval.embed import embed_weights

    if model is None or store is None:
        raise SslWsError(f"row {row} is not in the index; its encoder and store are needed to embed it")
    return embed_weights(model, store.weights(np.array([row]), device=device), device=device)[0]


def answer_rows(index: RetrievalIndex, rows, k: int, *, keep_self: bool = False, exclude_views: bool = False,
                label: Optional[int] = None, model=None, store=None, device=None):
    """Batch queries by store row: one ``{"query": {row, label, object}, "neighbours": [...]}`` per
    row, in order. A row is never its own answer unless ``keep_self``; ``exclude_views`` also
    leaves out the other fits of its image; rows outside the index need ``model`` and ``store``."""
    rows = [int(r) for r in rows]
    for row in rows:
        check_row(index, row)
    for row in rows:
        q = embed_row(index, row, model, store, device)
        pos = index.position_of_row(row)
        obj = int(index.object_ids[pos]) if pos is not None else int(store.object_ids[row])
        lab = int(index.labels[pos]) if pos is not None else int(store.labels[row])
        nb = index.neighbours(q, k, exclude_rows=[] if keep_self else [row],
                              exclude_objects=[obj] if exclude_views else [], label=label)
        yield {"query": {"row": row, "label": lab, "object": obj}, "neighbours": nb}


# ------------------------------------------------------------------ `ssl-ws query` as functions
@dataclass
class Answer:
    """One query answered (:func:`answer_one`): the Searcher's answer, a description of the query,
    the caption of its picture, its record (``query --json``) and, for an image, its fitted INRs."""

    answer: Dict
    description: str
    caption: List[str]
    record: Dict
    query_ws: object = None

    @property
    def neighbours(self) -> List[Dict]:
        return self.answer["neighbours"]


def answer_one(searcher, k: int, *, row: Optional[int] = None, image: Optional[str] = None,
               keep_self: bool = False, exclude_views: bool = False, label: Optional[int] = None,
               views: int = 1, resize: bool = False) -> Answer:
    """The neighbours of store row ``row``, or of the image file ``image`` fitted to ``views`` INRs with
    the store's recipe (see :class:`~ssl_ws.retrieve.searcher.Searcher`)."""
    if row is not None:
        (answer,) = searcher.rows([row], k, keep_self=keep_self, exclude_views=exclude_views, label=label)
        lab, names = answer["query"]["label"], searcher.class_names
        indexed = searcher.index.position_of_row(row) is not None
        label_txt = names[lab] if 0 <= lab < len(names) else str(lab)
        return Answer(answer, f"row {row} ({label_txt}" + (", indexed" if indexed else ", not indexed") + ")",
                      ["query", label_txt, f"row {row}"],
                      {"row": row, "label": lab, "class_name": label_txt, "indexed": indexed})
    images = searcher.load_images([image], resize=resize)
    answers, query_ws = searcher.images_with_fits(images, k, views=views, label=label, names=[os.path.abspath(image)])
    return Answer(answers[0], f"image {image} (fitted to {views} INR(s) with the store's recipe)",
                  ["query image", os.path.basename(image), "(its INR fit)"],
                  {"image": os.path.abspath(image), "views": views}, query_ws)


def neighbour_table(neighbours: List[Dict]) -> str:
    """The neighbours as a table: rank, row, label, class, object, view, similarity."""
    lines = [f"{'rank':>4} {'row':>8} {'label':>5}  {'class':<14} {'object':>7} {'view':>4} {'similarity':>10}"]
    for r, n in enumerate(neighbours, 1):
        lines.append(f"{r:>4} {n['row']:>8} {n['label']:>5}  {n['class_name'][:14]:<14} {n['object']:>7} "
                     f"{n['view']:>4} {n['similarity']:>10.4f}")
    return "\n".join(lines)


def write_answer(path: str, one: Answer, index_dir: str, index: RetrievalIndex, config: Dict) -> str:
    """The results JSON of one answer (``query --json``): the query, its neighbours, the index, ``config``."""
    from ..eval.results import write_results

    kind = index.info.get("index", {}).get("kind", "flat")
    return write_results(path, "query", {"query": one.record, "neighbours": one.neighbours}, config,
                         index={"path": os.path.abspath(index_dir), "kind": kind, "n": len(index),
                                "encoder": index.info.get("encoder")})


def answer_image_folder(searcher, folder: str, k: int, *, views: int = 1, label: Optional[int] = None,
                        resize: bool = False) -> List[Dict]:
    """One answer per image file directly in ``folder`` (:func:`image_files`), all fitted in one batch;
    a line on stderr says so first."""
    import sys

    files = image_files(folder)
    images = searcher.load_images(files, resize=resize)
    print(f"fitting {len(files)} image(s) x {views} view(s) with the store's recipe ...", file=sys.stderr)
    return searcher.images(images, k, views=views, label=label, names=[os.path.abspath(f) for f in files])


def read_ids(path: str) -> List[int]:
    """The row ids in the file ``path`` (``--ids-file``): integers separated by white space or commas, at least one."""
    import re

    from ..files import regular_file

    try:
        text = regular_file(path, "--ids-file", limit=256 << 20).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SslWsError(f"cannot read --ids-file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    ids = []
    for tok in re.split(r"[\s,]+", text.strip()):
        if not tok:
            continue
        try:
            ids.append(int(tok))
        except ValueError:
            raise SslWsError(f"--ids-file {path}: {tok!r} is not a row id (integers separated by spaces, commas "
                             f"or new lines)") from None
    if not ids:
        raise SslWsError(f"--ids-file {path} holds no row ids")
    return ids


def check_jsonl_path(path: str) -> None:
    """Refuse, before any work, a ``--jsonl`` destination that cannot be written."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise SslWsError(f"--jsonl {path}: directory {parent} does not exist")
    if os.path.isdir(path):
        raise SslWsError(f"--jsonl {path} is a directory; give a file path")


def write_jsonl(answers, path: Optional[str] = None) -> None:
    """One JSON line per answer: to ``path`` (atomically, all lines or none), or to stdout."""
    import json
    import sys

    if not path:
        for ans in answers:
            sys.stdout.write(json.dumps(ans) + "\n")
        return
    from ..atomic import atomic_write
    from ..errors import user_os_errors

    with user_os_errors(f"cannot write {path}"), atomic_write(path) as out:
        for ans in answers:
            out.write(json.dumps(ans) + "\n")
