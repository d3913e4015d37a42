"""`ssl-ws show-augment STORE`: a PNG grid of INRs rendered before and after augmentation.

Row ``i`` shows INR ``i`` of the split: its original render, then ``k``
independently augmented renders (a preset by name, see ``ssl-ws augmentations``).
Presets with MixUp mix each augmented INR with another INR of the shown batch.
Cells are upscaled with nearest-neighbour so that 8x8 digits stay visible.
"""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="INR store directory")
    p.add_argument("--augment", default="paper", help="augmentation preset (default: paper; list: ssl-ws augmentations)")
    p.add_argument("--n", type=int, default=6, help="INRs to show, one per row (default 6)")
    p.add_argument("--k", type=int, default=5, help="augmented renders per INR (default 5)")
    p.add_argument("--split", default="train", help="split to take the INRs from (default train)")
    p.add_argument("--seed", type=int, default=0, help="seed of the INR choice and of the augmentations")
    p.add_argument("--size", type=int, default=None, help="render resolution (default: the store's image size)")
    p.add_argument("--cell", type=int, default=96, help="approximate cell size in pixels after upscaling (default 96)")
    p.add_argument("--out", default="gallery.png", help="output PNG (default gallery.png)")


def _to_uint8(images):
    """``[B, C, H, W]`` in [0, 1] -> uint8 ``[B, H, W, C]`` (values clipped)."""
    return (images.clamp(0, 1) * 255).round().to("cpu").byte().permute(0, 2, 3, 1).numpy()


def make_gallery(ws, transform, k: int, height: int, width: int, generator=None, cell: int = 96):
    """A Pillow image: one row per INR of ``ws``, the original then ``k`` augmented renders.

    ``transform`` is a transform or a preset's :class:`~ssl_ws.augment.Pipeline`, whose
    ``mixup`` (if any) is applied after its per-view transforms.
    """
    import numpy as np
    import torch
    from PIL import Image

    from ..augment import Pipeline
    from ..errors import SslWsError
    from ..inr.render import render_image

    if k < 0 or len(ws) == 0:
        raise SslWsError("show at least one INR and k >= 0 augmentations")
    if ws.spec.out_dim not in (1, 3):
        raise SslWsError(f"can show INRs of 1 or 3 output channels, these have {ws.spec.out_dim}")
    mix = transform.mixup if isinstance(transform, Pipeline) else None
    columns = [ws]
    with torch.no_grad():
        for _ in range(k):
            view = transform(ws, generator)
            if mix is not None and len(ws) > 1:
                view = mix.mix(view, generator=generator)[0]
            columns.append(view)
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


def run(args) -> int:
    from pathlib import Path

    import numpy as np
    import torch

    from ..augment import preset
    from ..data import load_store
    from ..errors import SslWsError, user_os_errors

    if args.n < 1 or args.k < 0:
        raise SslWsError("--n must be >= 1 and --k >= 0")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise SslWsError(f"cannot write {out}: directory {out.parent} does not exist (create it first)")
    store = load_store(args.store)
    transform = preset(args.augment, num_classes=store.num_classes or None)
    rows = store.rows(args.split)
    if len(rows) == 0:
        raise SslWsError(f"split {args.split!r} of {args.store} is empty")
    rng = np.random.default_rng(args.seed)
    chosen = np.sort(rng.choice(rows, size=min(args.n, len(rows)), replace=False))
    ws = store.weights(chosen)
    if args.size:
        height = width = int(args.size)
    elif len(store.image_size) == 2:
        height, width = (int(s) for s in store.image_size)
    else:
        height = width = 28
    generator = torch.Generator().manual_seed(args.seed)
    image = make_gallery(ws, transform, args.k, height, width, generator=generator, cell=args.cell)
    with user_os_errors(f"cannot write {out}"):
        image.save(out)
    print(f"wrote {out}: {len(chosen)} INRs (rows {', '.join(map(str, chosen.tolist()))}) x "
          f"(original + {args.k} x {args.augment}), {height}x{width} renders upscaled to {image.size[0]}x{image.size[1]} px")
    return 0
