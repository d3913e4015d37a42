"""Image sources: real images (and labels) that INRs are fitted to.

Every source yields an :class:`ImageSet`: ``images`` float32 ``[N, C, H, W]`` in [0, 1],
``labels`` int64 ``[N]``, ``class_names``, and a ``description`` recorded in ``meta.json``:

* ``digits``: scikit-learn's ``load_digits`` (1,797 8x8 images, values 0..16 / 16);
* ``fashion-mnist`` / ``mnist``: gzipped or plain IDX files (``train-images-idx3-ubyte.gz``,
  ``train-labels-idx1-ubyte.gz``, ``t10k-...``), train images first, in ``data_dir`` (Fashion-MNIST's
  default: ``/usr/share/datasets/fashion-mnist``, Debian's ``dataset-fashion-mnist``);
* ``.npz`` (``images`` / ``x``, ``labels`` / ``y``) or ``.npy`` (labels from ``<name>_labels.npy``,
  else 0): ``[N, H, W]``, ``[N, H, W, C]`` (C in 1, 3) or ``[N, C, H, W]``; uint8 scaled by
  1/255, floats must lie in [0, 1];
* a folder of per-class sub-folders of images (Pillow; PNG/JPEG/BMP/GIF/TIFF; class names sorted;
  one size and mode).

Every failure is an :class:`~ssl_ws.errors.SslWsError` with one line saying what and where.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..errors import SslWsError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
MNIST_DIR = "/usr/share/datasets/mnist"
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
SOURCES = ("digits", "fashion-mnist", "mnist", "<file.npz|file.npy>", "<folder of class folders>")


@dataclass
class ImageSet:
    """Images ``[N, C, H, W]`` float32 in [0, 1] with int64 labels ``[N]``."""

    images: np.ndarray
    labels: np.ndarray
    class_names: List[str]
    description: Dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_size(self):
        return tuple(self.images.shape[2:])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])


# ----------------------------------------------------------------------------- IDX
def read_idx(path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array (big-endian per the spec)."""
    path = Path(path)
    if not path.is_file():
        raise SslWsError(f"IDX file not found: {path}")
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SslWsError(f"cannot read IDX file {path}: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise SslWsError(f"{path} is not an IDX file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    code, ndim = data[2], data[3]
    if code not in dtypes or ndim == 0:
        raise SslWsError(f"{path}: unsupported IDX type code {code:#x} or zero dimensions")
    if len(data) < 4 + 4 * ndim:
        raise SslWsError(f"{path}: truncated IDX header")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    dtype = np.dtype(dtypes[code])
    need = int(np.prod(shape)) * dtype.itemsize
    body = data[4 + 4 * ndim :]
    if len(body) != need:
        raise SslWsError(f"{path}: IDX body has {len(body)} bytes, header {shape} needs {need} (truncated or corrupt)")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _find(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        if (directory / name).is_file():
            return directory / name
    raise SslWsError(f"{directory}: no {stem}.gz (or {stem}) found")


def load_idx_dataset(directory, name: str, class_names=None, limit: Optional[int] = None) -> ImageSet:
    """An MNIST-layout data set from a directory of IDX files (train first, then t10k)."""
    directory = Path(directory)
    if not directory.is_dir():
        hint = " (install it with: apt-get install dataset-fashion-mnist)" if name == "fashion-mnist" else ""
        raise SslWsError(f"{name} directory not found: {directory}{hint}; pass --data-dir")
    parts_x, parts_y, counts = [], [], {}
    for split in ("train", "t10k"):
        try:
            xp = _find(directory, f"{split}-images-idx3-ubyte")
            yp = _find(directory, f"{split}-labels-idx1-ubyte")
        except SslWsError:
            if split == "train":
                raise
            continue
        x, y = read_idx(xp), read_idx(yp)
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise SslWsError(f"{xp.name} {x.shape} and {yp.name} {y.shape} are not images [N, H, W] with N labels")
        parts_x.append(x)
        parts_y.append(y)
        counts[split] = len(x)
        if limit is not None and sum(counts.values()) >= limit:
            break
    x = np.concatenate(parts_x)
    y = np.concatenate(parts_y).astype(np.int64)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    n_classes = int(y.max()) + 1 if len(y) else 0
    class_names = list(class_names) if class_names else [str(i) for i in range(n_classes)]
    desc = {"name": name, "path": str(directory.resolve()), "counts": counts, "train_first": True}
    return ImageSet(_to_unit(x[:, None], str(directory)), y, class_names, desc)


# ------------------------------------------------------------------------- arrays
def _to_unit(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if not np.issubdtype(arr.dtype, np.number):
        raise SslWsError(f"{where}: images must be numeric, got dtype {arr.dtype}")
    out = arr.astype(np.float32)
    if out.size and (not np.isfinite(out).all() or out.min() < 0.0 or out.max() > 1.0):
        raise SslWsError(f"{where}: float images must be finite and lie in [0, 1] (uint8 images are scaled by 1/255)")
    return out


def _nchw(images: np.ndarray, where: str) -> np.ndarray:
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4:
        if images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
            return images
        if images.shape[-1] in (1, 3):
            return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
        if images.shape[1] in (1, 3):
            return images
    raise SslWsError(f"{where}: images must be [N, H, W], [N, H, W, C] or [N, C, H, W] with C in (1, 3); got {images.shape}")


#: the first bytes of each NumPy file kind: ``np.save``'s header, ``np.savez``'s zip archive
NUMPY_MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK"}


def numpy_file_kind(path) -> Optional[str]:
    """``".npy"`` or ``".npz"`` as the file's first bytes say (its content, not its name), else
    None. ``OSError`` propagates."""
    with open(path, "rb") as fh:
        head = fh.read(6)
    return next((kind for kind, magic in NUMPY_MAGIC.items() if head.startswith(magic)), None)


def load_array_file(path) -> ImageSet:
    """Images (and labels) from a ``.npz`` or ``.npy`` file."""
    path = Path(path)
    if not path.is_file():
        raise SslWsError(f"array file not found: {path}")
    try:
        kind = numpy_file_kind(path)
    except OSError as exc:
        raise SslWsError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.suffix in NUMPY_MAGIC and kind != path.suffix:
        what = "a NumPy .npz archive (a zip file)" if path.suffix == ".npz" else "a NumPy .npy file (no NUMPY header)"
        raise SslWsError(f"cannot read {path}: it is not {what}; save the images with numpy.save / numpy.savez")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = set(z.files)
                ik = next((k for k in ("images", "x", "X", "arr_0") if k in keys), None)
                if ik is None:
                    raise SslWsError(f"{path}: no 'images' (or 'x') array; found {sorted(keys)}")
                images = z[ik]
                lk = next((k for k in ("labels", "y", "Y", "arr_1") if k in keys), None)
                labels = z[lk] if lk else None
        else:
            images = np.load(path, allow_pickle=False)
            lp = path.with_name(path.stem + "_labels.npy")
            labels = np.load(lp, allow_pickle=False) if lp.is_file() else None
    except SslWsError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        if "pickle" in str(exc).lower():
            raise SslWsError(f"{path} holds pickled Python objects, which ssl_ws never loads; "
                             f"save the images as a numeric array") from None
        raise SslWsError(f"cannot read {path}: {' '.join(str(exc).split())}") from None
    images = _nchw(np.asarray(images), str(path))
    if labels is None:
        labels = np.zeros(len(images), dtype=np.int64)
    labels = np.asarray(labels)
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer) or (labels < 0).any():
        raise SslWsError(f"{path}: labels must be {len(images)} non-negative integers, got shape {labels.shape} {labels.dtype}")
    labels = labels.astype(np.int64)
    n_classes = int(labels.max()) + 1 if len(labels) else 0
    desc = {"name": "array", "path": str(path.resolve())}
    return ImageSet(_to_unit(images, str(path)), labels, [str(i) for i in range(n_classes)], desc)


def load_image_folder(path) -> ImageSet:
    """A folder with one sub-folder of image files per class."""
    from ..files import open_image

    root = Path(path)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise SslWsError(f"{root}: expected one sub-folder of images per class, found none")
    images, labels, size, mode = [], [], None, None
    for label, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for f in files:
            try:
                with open_image(f) as im:
                    m = "L" if im.mode in ("1", "L", "I", "I;16", "F", "P", "LA") and _is_gray(im) else "RGB"
                    arr = np.asarray(im.convert(m))
            except (OSError, ValueError) as exc:
                raise SslWsError(f"cannot read image {f}: {exc}") from None
            if size is None:
                size, mode = arr.shape[:2], m
            if arr.shape[:2] != size:
                raise SslWsError(f"images of mixed sizes: {f} is {arr.shape[1]}x{arr.shape[0]}, earlier ones {size[1]}x{size[0]} (W x H)")
            if m != mode:
                raise SslWsError(f"images of mixed colour modes: {f} is {m}, earlier ones {mode}")
            images.append(arr)
            labels.append(label)
    if not images:
        raise SslWsError(f"{root}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in the class folders")
    x = np.stack(images)
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    desc = {"name": "folder", "path": str(root.resolve())}
    return ImageSet(_to_unit(np.ascontiguousarray(x), str(root)), np.asarray(labels, dtype=np.int64), classes, desc)


def _is_gray(im) -> bool:
    if im.mode == "P":
        return im.convert("RGB").convert("L").convert("RGB").tobytes() == im.convert("RGB").tobytes()
    return True


# --------------------------------------------------------------------- dispatcher
def load_source(source: str, data_dir: Optional[str] = None, limit: Optional[int] = None) -> ImageSet:
    """Load an image source by name (``digits``, ``fashion-mnist``, ``mnist``) or path.

    ``limit`` keeps the first ``limit`` images (the training images come first).
    """
    if limit is not None and limit < 1:
        raise SslWsError(f"--limit must be positive, got {limit}")
    if source == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = (d.images / 16.0).astype(np.float32)[:, None]
        out = ImageSet(x, d.target.astype(np.int64), [str(i) for i in range(10)], {"name": "digits", "scale": "1/16"})
    elif source == "fashion-mnist":
        out = load_idx_dataset(data_dir or FASHION_MNIST_DIR, "fashion-mnist", FASHION_MNIST_CLASSES, limit)
    elif source == "mnist":
        if data_dir is None and not Path(MNIST_DIR).is_dir():
            raise SslWsError("mnist needs --data-dir: a directory with train-images-idx3-ubyte.gz etc.")
        out = load_idx_dataset(data_dir or MNIST_DIR, "mnist", None, limit)
    else:
        p = Path(source if data_dir is None else os.path.join(data_dir, source))
        if p.is_dir():
            out = load_image_folder(p)
        elif p.suffix in (".npz", ".npy"):
            out = load_array_file(p)
        elif p.exists():
            raise SslWsError(f"unsupported source file {p}: expected .npz, .npy or a folder of class folders")
        else:
            raise SslWsError(f"unknown source {source!r}: expected one of digits, fashion-mnist, mnist, a .npz/.npy file or a folder")
    if limit is not None:
        out.images, out.labels = out.images[:limit], out.labels[:limit]
    if len(out) == 0:
        raise SslWsError(f"source {source!r} holds no images")
    return out
