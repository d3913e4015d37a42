"""`ssl-ws merge SHARD... --out STORE`: join the stores written by `fit --shard i/n`."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("shards", nargs="+", help="shard store directories (all i/n of one fit)")
    p.add_argument("--out", required=True, help="output store directory")
    p.add_argument("--allow-missing", action="store_true", help="merge even if some shards of the fit are absent")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output store")


def run(args) -> int:
    from ..inr.build import merge_shards

    n = merge_shards(args.shards, args.out, allow_missing=args.allow_missing, overwrite=args.overwrite)
    print(f"wrote {args.out}: {n} INRs from {len(args.shards)} shard(s)")
    return 0
