"""`ssl-ws merge SHARD... --out STORE`: join the stores written by `fit --shard i/n`."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("shards", nargs="+", help="shard store directories (all i/n of one fit)")
    p.add_argument("--out", required=True, help="output store directory")
    p.add_argument("--allow-missing", action="store_true", help="merge even if some shards of the fit are absent")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output store")


def _same_fit(meta):
    return {k: v for k, v in meta.items() if k not in ("shard", "failed_fits", "retried_fits", "num_rows", "mean_steps")}


def run(args) -> int:
    from pathlib import Path

    import numpy as np

    from ..data.store import load_store, write_store
    from ..errors import SslWsError

    if Path(args.out).exists() and not args.overwrite:
        raise SslWsError(f"output {args.out} already exists; pass --overwrite to replace it")
    seen_paths = {}
    for p in args.shards:
        key = Path(p).resolve()
        if key in seen_paths:
            raise SslWsError(f"store {p} is given twice (as {seen_paths[key]} and {p}); give each shard once")
        seen_paths[key] = p
    stores = [load_store(p) for p in args.shards]
    ref = _same_fit(stores[0].meta)
    seen = {}
    for s in stores:
        if _same_fit(s.meta) != ref:
            diff = sorted(k for k in set(ref) | set(_same_fit(s.meta)) if ref.get(k) != s.meta.get(k))
            raise SslWsError(f"{s.path} is not a shard of the same fit as {stores[0].path} (differs in {', '.join(diff)})")
        sh = s.meta.get("shard")
        if sh is not None:
            if tuple(sh) in seen:
                raise SslWsError(f"shard {sh[0]}/{sh[1]} given twice ({seen[tuple(sh)]} and {s.path})")
            seen[tuple(sh)] = s.path
    ns = {n for _, n in seen}
    if len(ns) > 1:
        raise SslWsError(f"shards of different counts: {sorted(ns)}")
    if ns and not args.allow_missing:
        n = ns.pop()
        missing = sorted(set(range(n)) - {i for i, _ in seen})
        if missing:
            raise SslWsError(f"shard(s) {', '.join(f'{i}/{n}' for i in missing)} missing; pass --allow-missing to merge anyway")
    cat = {k: np.concatenate([np.asarray(getattr(s, k)) for s in stores])
           for k in ("params", "labels", "object_ids", "view_ids", "psnr")}
    order = np.lexsort((cat["view_ids"], cat["object_ids"]))
    cat = {k: v[order] for k, v in cat.items()}
    splits = {}
    for s in stores:
        for name, ids in s.splits.items():
            splits.setdefault(name, []).extend(ids.tolist())
    meta = dict(stores[0].meta)
    meta["shard"] = None
    meta["merged_from"] = len(stores)
    for key in ("failed_fits", "retried_fits"):
        meta[key] = sorted(x for s in stores for x in s.meta.get(key, []))
    meta["mean_steps"] = float(np.average([s.meta.get("mean_steps", 0.0) for s in stores], weights=[len(s) for s in stores]))
    write_store(args.out, splits=splits, meta=meta, overwrite=args.overwrite, **cat)
    print(f"wrote {args.out}: {len(order)} INRs from {len(stores)} shard(s)")
    return 0
