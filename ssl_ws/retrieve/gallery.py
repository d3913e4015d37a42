"""Pictures of INRs: a query's render beside its neighbours' renders (retrieval), and an INR beside
its augmented versions (``ssl-ws show-augment``, :func:`augmentation_picture`).

Every INR is rendered on the store's pixel grid (:func:`~ssl_ws.inr.render.render_image`,
values clipped to [0, 1]) and upscaled with nearest-neighbour interpolation by an
integer factor so that tiny images (8x8 digits) stay readable; under each tile go
up to three caption lines (class, row and view, cosine similarity). Neighbours
of the query's class are captioned in green, others in red.
"""

from __future__ import annotations

import math
import os
from typing import List, Optional, Sequence

import numpy as np
import torch

from ..errors import SslWsError
from ..models.pixels import render_rows  # noqa: F401 (part of this module's API: renders of store rows)

MIN_TILE = 112  # upscale until the longer side is at least this many pixels
PAD = 8  # between tiles and around the picture
SEP = 24  # extra gap between the query and its neighbours
FONT_SIZE = 13
LINE_H = FONT_SIZE + 4
CAPTION_LINES = 3


def to_pil(image: torch.Tensor, scale: int = 1):
    """One ``[C, H, W]`` image in [0, 1] (C = 1 or 3) as a PIL image, upscaled ``scale`` times."""
    from PIL import Image

    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise SslWsError(f"can only draw images [1 or 3, H, W], got {tuple(image.shape)}")
    arr = (image.detach().float().clamp(0, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    pil = Image.fromarray(arr[0], mode="L") if arr.shape[0] == 1 else Image.fromarray(arr.transpose(1, 2, 0), mode="RGB")
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    return pil.convert("RGB")


def tile_scale(height: int, width: int, min_tile: int = MIN_TILE) -> int:
    """Integer upscaling factor that brings the longer side to at least ``min_tile``."""
    return max(1, math.ceil(min_tile / max(height, width)))


def picture_size(height: int, width: int, n_neighbours: int, min_tile: int = MIN_TILE):
    """(width, height) in pixels of :func:`query_picture`'s output."""
    s = tile_scale(height, width, min_tile)
    tw, th = width * s, height * s
    return (PAD + tw + SEP + n_neighbours * (tw + PAD), PAD + th + 4 + CAPTION_LINES * LINE_H + PAD)


def _fit_text(draw, text: str, font, max_w: int) -> str:
    if draw.textlength(text, font=font) <= max_w:
        return text
    while text and draw.textlength(text + "…", font=font) > max_w:
        text = text[:-1]
    return text + "…"


def query_picture(
    query_image: torch.Tensor,
    neighbour_images: torch.Tensor,
    query_caption: Sequence[str],
    captions: Sequence[Sequence[str]],
    path: Optional[str] = None,
    match: Optional[Sequence[bool]] = None,
    min_tile: int = MIN_TILE,
):
    """Draw the query (left, framed in blue) and its neighbours in order, with captions.

    Args:
        query_image: ``[C, H, W]`` in [0, 1].
        neighbour_images: ``[k, C, H, W]``.
        query_caption: up to three lines under the query.
        captions: per neighbour, up to three lines.
        path: write a PNG there when given.
        match: per neighbour, True (green caption) / False (red) / None (black).

    Returns:
        the PIL image.
    """
    from PIL import Image, ImageDraw, ImageFont

    if neighbour_images.dim() != 4 or neighbour_images.shape[1:] != query_image.shape:
        raise SslWsError("neighbour renders must be [k, C, H, W] with the query's C, H, W")
    k = neighbour_images.shape[0]
    if len(captions) != k:
        raise SslWsError(f"{k} neighbour renders but {len(captions)} captions")
    _, h, w = query_image.shape
    scale = tile_scale(h, w, min_tile)
    tw, th = w * scale, h * scale
    size = picture_size(h, w, k, min_tile)
    canvas = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.load_default(size=FONT_SIZE)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        font = ImageFont.load_default()

    def place(img, x, lines, color):
        canvas.paste(to_pil(img, scale), (x, PAD))
        for j, line in enumerate(list(lines)[:CAPTION_LINES]):
            draw.text((x, PAD + th + 4 + j * LINE_H), _fit_text(draw, str(line), font, tw), fill=color, font=font)

    place(query_image, PAD, query_caption, (0, 0, 160))
    draw.rectangle([PAD - 3, PAD - 3, PAD + tw + 2, PAD + th + 2], outline=(0, 0, 200), width=2)
    x0 = PAD + tw + SEP
    draw.line([(x0 - SEP // 2, PAD), (x0 - SEP // 2, size[1] - PAD)], fill=(160, 160, 160), width=1)
    for i in range(k):
        m = None if match is None else match[i]
        color = (0, 0, 0) if m is None else ((0, 130, 0) if m else (200, 0, 0))
        place(neighbour_images[i], x0 + i * (tw + PAD), captions[i], color)
    if path:
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        canvas.save(path)
    return canvas


def neighbour_captions(neighbours: List[dict]) -> List[List[str]]:
    """Caption lines for :meth:`RetrievalIndex.neighbours` entries."""
    return [
        [f"{n['class_name']}", f"row {n['row']} v{n['view']}", f"sim {n['similarity']:.4f}"]
        for n in neighbours
    ]


def _to_uint8(images):
    """``[B, C, H, W]`` in [0, 1] -> uint8 ``[B, H, W, C]`` (values clipped)."""
    return (images.clamp(0, 1) * 255).round().to("cpu").byte().permute(0, 2, 3, 1).numpy()


def augmentation_picture(ws, transform, k: int, height: int, width: int, generator=None, cell: int = 96):
    """A Pillow image: one row per INR of ``ws``, the original then ``k`` augmented renders.

    ``transform`` is a transform or a preset's :class:`~ssl_ws.augment.Pipeline` (MixUp included,
    except for a single INR, which has no partner in its batch).
    """
    from PIL import Image

    from ..augment import Pipeline
    from ..inr.render import render_image

    if k < 0 or len(ws) == 0:
        raise SslWsError("show at least one INR and k >= 0 augmentations")
    if ws.spec.out_dim not in (1, 3):
        raise SslWsError(f"can show INRs of 1 or 3 output channels, these have {ws.spec.out_dim}")
    if isinstance(transform, Pipeline) and transform.mixup is not None and len(ws) < 2:
        transform = transform.per_view
    columns = [ws]
    with torch.no_grad():
        for _ in range(k):
            columns.append(transform(ws, generator))
        imgs = [_to_uint8(render_image(c, height, width)) for c in columns]  # each [n, H, W, C]
    n, cols = len(ws), len(columns)
    factor = max(1, round(cell / max(height, width)))
    gap = max(2, factor)
    ch, cw = height * factor, width * factor
    channels = imgs[0].shape[-1]
    canvas = np.full((n * ch + (n + 1) * gap, cols * cw + (cols + 1) * gap + gap, channels), 64, dtype=np.uint8)
    for j, col in enumerate(imgs):
        x0 = gap + j * (cw + gap) + (gap if j > 0 else 0)  # an extra gap after the originals
        for i in range(n):
            tile = col[i].repeat(factor, axis=0).repeat(factor, axis=1)
            y0 = gap + i * (ch + gap)
            canvas[y0 : y0 + ch, x0 : x0 + cw] = tile
    mode = "L" if channels == 1 else "RGB"
    return Image.fromarray(canvas[..., 0] if channels == 1 else canvas, mode=mode)


def stack_pictures(paths: Sequence[str], out_path: str) -> str:
    """The PNG files ``paths`` stacked top to bottom (left-aligned, white around) into ``out_path``."""
    from PIL import Image

    images = [Image.open(p).convert("RGB") for p in paths]
    width = max(im.width for im in images)
    sheet = Image.new("RGB", (width, sum(im.height for im in images)), "white")
    y = 0
    for im in images:
        sheet.paste(im, (0, y))
        y += im.height
    sheet.save(out_path)
    return out_path
