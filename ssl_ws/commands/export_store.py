"""`ssl-ws export-store STORE --format dwsnets --out DIR`: an INR store in a published layout."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="the INR store directory")
    p.add_argument("--format", default="dwsnets", choices=["dwsnets"],
                   help="dwsnets: splits.json {split: {path, label}} + inrs/<row>.pth state dicts (seq.{i}.weight/bias, label)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--max-views", type=int, default=1,
                   help="export views < N of every object, each as its own entry (default 1; 0 = all)")
    p.add_argument("--relative-paths", action="store_true",
                   help="write paths relative to splits.json (movable; the DWSNets code then needs cwd = DIR) "
                        "instead of absolute ones")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")


def run(args) -> int:
    import sys
    from pathlib import Path

    from tqdm import tqdm

    from ..data.exporters import export_store
    from ..data.store import load_store
    from ..errors import SslWsError

    if Path(args.out).exists() and not args.overwrite:
        raise SslWsError(f"output {args.out} already exists; pass --overwrite to replace it")
    store = load_store(args.store)
    bar = tqdm(unit="INR", file=sys.stderr, dynamic_ncols=True)

    def progress(i, n):
        bar.total = n
        bar.update(i - bar.n)

    try:
        counts = export_store(store, args.out, args.format, max_views=args.max_views or None,
                              relative_paths=args.relative_paths, overwrite=args.overwrite, progress=progress)
    finally:
        bar.close()
    print(f"wrote {args.out} ({args.format}): {sum(counts.values())} INRs, "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0
