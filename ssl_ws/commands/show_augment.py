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


def run(args) -> int:
    from pathlib import Path

    import numpy as np
    import torch

    from ..augment import preset
    from ..data import load_store
    from ..retrieve.gallery import augmentation_picture
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
    image = augmentation_picture(ws, transform, args.k, height, width, generator=generator, cell=args.cell)
    with user_os_errors(f"cannot write {out}"):
        image.save(out)
    print(f"wrote {out}: {len(chosen)} INRs (rows {', '.join(map(str, chosen.tolist()))}) x "
          f"(original + {args.k} x {args.augment}), {height}x{width} renders upscaled to {image.size[0]}x{image.size[1]} px")
    return 0
