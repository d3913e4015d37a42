"""Reading the files a user hands us: regular files only, bounded, and data rather than code.

Every file the package reads on a user's behalf (``meta.json``, ``splits.json``, YAML
configs, images, ``.pth`` state dicts, index records) goes through one of these:

* :func:`regular_file` -- the path is a regular file (after symlinks) of at most ``limit``
  bytes: a FIFO would block forever, ``/dev/zero`` would be read until memory runs out;
* :func:`read_json` -- a bounded regular file parsed as JSON, duplicate keys refused (which
  of two ``"w0"`` entries is meant is not ours to guess), NaN / Infinity literals refused;
* :func:`load_yaml` -- a bounded YAML file whose alias expansion ("billion laughs") is
  bounded too: the composed node graph is measured with shared nodes counted once per use;
* :func:`open_image` -- a bounded image file whose pixel count is checked from its header
  before it is decoded (Pillow's decompression-bomb limits become one error line).

Each failure is one :class:`~ssl_ws.errors.SslWsError` line naming the file.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Union

from .errors import SslWsError

MiB = 1 << 20
JSON_LIMIT = 512 * MiB  # splits.json of tens of millions of ids fit
YAML_LIMIT = 4 * MiB
YAML_NODES = 1_000_000  # nodes of a YAML document once its aliases are expanded
IMAGE_LIMIT = 256 * MiB
IMAGE_PIXELS = 1 << 26  # 64 Mpx: 8k x 8k


def regular_file(path: Union[str, Path], what: str = "file", limit: int = None) -> Path:
    """``path`` as a Path, checked to be a regular file of at most ``limit`` bytes."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise SslWsError(f"{what} not found: {p}") from None
    except OSError as exc:
        raise SslWsError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise SslWsError(f"{what} {p} is {kind}; expected a regular file")
    if limit is not None and st.st_size > limit:
        raise SslWsError(f"{what} {p} is {st.st_size / MiB:.1f} MiB, over the limit of {limit / MiB:.0f} MiB")
    return p


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constants(name):
    raise ValueError(f"{name} is not a JSON number")


def read_json(path: Union[str, Path], what: str = None, limit: int = JSON_LIMIT) -> Any:
    """The JSON content of ``path`` (see module docstring); one error line if it cannot be."""
    p = regular_file(path, what or Path(path).name, limit)
    try:
        with open(p, "rb") as fh:
            text = fh.read(limit + 1)
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (OSError, ValueError, RecursionError) as exc:
        raise SslWsError(f"corrupt {p}: {' '.join(str(exc).split())[:200]}") from None


def _expanded_size(node, budget: int) -> int:
    """Nodes of a composed YAML node once every alias is expanded, stopping past ``budget``."""
    import yaml

    sizes = {}
    order, stack = [], [node]
    while stack:  # post-order without recursion (deep nesting is an attack too)
        n = stack.pop()
        if id(n) in sizes:
            continue
        sizes[id(n)] = None
        order.append(n)
        if isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
        elif isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                stack.extend((k, v))
    for n in reversed(order):
        if isinstance(n, yaml.SequenceNode):
            children = n.value
        elif isinstance(n, yaml.MappingNode):
            children = [x for kv in n.value for x in kv]
        else:
            children = []
        total = 1 + sum(sizes[id(c)] or 0 for c in children)
        sizes[id(n)] = min(total, budget + 1)
    return sizes[id(node)]


def load_yaml(path: Union[str, Path], what: str = "config", limit: int = YAML_LIMIT):
    """An OmegaConf container of a YAML file, bounded in bytes and in expanded nodes."""
    import yaml
    from omegaconf import OmegaConf

    p = regular_file(path, what, limit)
    try:
        text = p.read_text()
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SslWsError(f"cannot parse {what} {p}: {str(exc).splitlines()[0]}") from None
    if node is not None and _expanded_size(node, YAML_NODES) > YAML_NODES:
        raise SslWsError(f"{what} {p} expands to more than {YAML_NODES:,} YAML nodes (nested aliases); refused")
    try:
        return OmegaConf.create(text) if text.strip() else OmegaConf.create({})
    except Exception as exc:  # omegaconf / yaml errors of several types
        raise SslWsError(f"cannot parse {what} {p}: {str(exc).splitlines()[0]}") from None


def open_image(path: Union[str, Path], what: str = "image", max_pixels: int = IMAGE_PIXELS, limit: int = IMAGE_LIMIT):
    """A decoded Pillow image of ``path``, its size checked from the header before decoding."""
    return _decode(regular_file(path, what, limit), f"{what} {path}", max_pixels)


def decode_image(data: bytes, what: str = "image", max_pixels: int = IMAGE_PIXELS, limit: int = IMAGE_LIMIT):
    """A decoded Pillow image of encoded bytes (PNG, JPEG, ...), bounded like :func:`open_image`."""
    import io

    if len(data) > limit:
        raise SslWsError(f"{what} is {len(data) / MiB:.1f} MiB, over the limit of {limit / MiB:.0f} MiB")
    return _decode(io.BytesIO(data), what, max_pixels)


def _decode(source, what: str, max_pixels: int):
    """``source`` (a path or a file object) decoded; ``what`` names it in errors."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(source)
            w, h = im.size
            if w * h > max_pixels:
                im.close()
                raise SslWsError(f"{what} is {w}x{h} pixels, over the limit of {max_pixels:,}")
            im.load()
        return im
    except SslWsError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise SslWsError(f"{what} refused: {' '.join(str(exc).split())[:200]}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise SslWsError(f"cannot read {what}: {' '.join(str(exc).split())[:200]}") from None
