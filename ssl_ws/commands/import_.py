"""`ssl-ws import {dwsnets,multiview} SRC --out STORE`: a published INR data set into a store."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("layout", choices=["dwsnets", "multiview"],
                   help="dwsnets: splits.json {split: {path, label}}; multiview: splits.json {split: [paths]}, label in each .pth")
    p.add_argument("src", help="the splits .json file (or the directory holding it)")
    p.add_argument("--out", required=True, help="output store directory")
    p.add_argument("--image-size", default="28x28", help="HxW of the images the INRs represent (default 28x28)")
    p.add_argument("--w0", type=float, default=30.0, help="SIREN frequency factor of the INRs (default 30)")
    p.add_argument("--output-offset", type=float, default=0.5, help="constant added to the output (default 0.5)")
    p.add_argument("--swap-xy", action="store_true",
                   help="swap the first-layer input columns (INRs fitted on an 'ij' grid, x down the rows)")
    p.add_argument("--view-pattern", default=None,
                   help="multiview: regex whose one group (digits) is the view id in each path")
    p.add_argument("--class-names", default=None, help="comma-separated class names, or 'fashion-mnist'")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output store")


def run(args) -> int:
    import sys
    from pathlib import Path

    from tqdm import tqdm

    from ..data.importers import import_inrs
    from ..data.sources import FASHION_MNIST_CLASSES
    from ..data.store import write_store
    from ..errors import SslWsError

    if Path(args.out).exists() and not args.overwrite:
        raise SslWsError(f"output {args.out} already exists; pass --overwrite to replace it")
    try:
        h, w = (int(x) for x in args.image_size.lower().split("x"))
    except ValueError:
        raise SslWsError(f"--image-size must look like 28x28, got {args.image_size!r}") from None
    names = None
    if args.class_names == "fashion-mnist":
        names = FASHION_MNIST_CLASSES
    elif args.class_names:
        names = [s.strip() for s in args.class_names.split(",")]
    bar = tqdm(unit="INR", file=sys.stderr, dynamic_ncols=True)

    def progress(i, n):
        bar.total = n
        bar.update(i - bar.n)

    try:
        kw = import_inrs(args.src, args.layout, image_size=(h, w), w0=args.w0, output_offset=args.output_offset,
                         swap_xy=args.swap_xy, view_pattern=args.view_pattern, class_names=names, progress=progress)
    finally:
        bar.close()
    write_store(args.out, overwrite=args.overwrite, **kw)
    n_obj = len(set(kw["object_ids"].tolist()))
    counts = ", ".join(f"{k} {len(v)}" for k, v in kw["splits"].items())
    print(f"wrote {args.out}: {len(kw['params'])} INRs of {n_obj} objects "
          f"(views {kw['meta']['num_views']}), objects per split: {counts}")
    return 0
