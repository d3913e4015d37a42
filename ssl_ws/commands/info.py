"""`ssl-ws info STORE [--check]`: what a store holds -- splits, views, classes, architecture, PSNR.

Every load validates the store once (:func:`ssl_ws.data.store.check_store`, cached in
``checks.json``); ``--check`` runs the full scan again regardless of the cache and says so.
"""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="INR store directory")
    p.add_argument("--check", action="store_true",
                   help="scan the whole store now (finite params, labels in range, splits disjoint and stored), "
                        "ignoring the cached result of an earlier scan")


def summarize(store) -> str:
    import numpy as np

    from ..inr.build import psnr_summary

    lines = [f"store        {store.path}",
             f"architecture {store.spec.describe()}",
             f"images       {store.image_size[0]}x{store.image_size[1]}, {store.channels} channel(s)" if store.image_size
             else "images       size unknown"]
    src = store.meta.get("source") or {}
    fit = store.meta.get("fit")
    lines.append(f"source       {src.get('name', '?')}" + (f" ({src['path']})" if src.get("path") else ""))
    if fit:
        lines.append(f"fitting      recipe {fit.get('recipe')}, lr {fit.get('lr')}, <= {fit.get('steps')} steps, "
                     f"target {fit.get('target_psnr')} dB, seed {fit.get('seed')}")
    elif store.meta.get("imported"):
        imp = store.meta["imported"]
        lines.append(f"imported     layout {imp.get('layout')}, swapped_xy {imp.get('swapped_xy')}")
    n_obj = len(np.unique(store.object_ids))
    lines.append(f"rows         {len(store)} INRs of {n_obj} objects")
    _, per_obj = np.unique(store.object_ids, return_counts=True)
    if per_obj.size:
        lines.append(f"views/object min {per_obj.min()}, median {int(np.median(per_obj))}, max {per_obj.max()} "
                     f"(view ids 0..{int(store.view_ids.max())})")
    for name, ids in store.splits.items():
        lines.append(f"split {name:<6} {len(ids)} objects, {len(store.rows(name))} rows")
    names = store.class_names
    labels, counts = np.unique(store.labels, return_counts=True)
    cls = ", ".join(f"{names[l] if l < len(names) else l}: {c}" for l, c in zip(labels.tolist(), counts.tolist()))
    lines.append(f"classes      {store.num_classes}: {cls}")
    psnr = np.asarray(store.psnr)
    finite = psnr[np.isfinite(psnr)]
    target = (fit or {}).get("target_psnr", 40.0)
    lines.append(psnr_summary(finite, target) if finite.size else "PSNR         unknown (imported INRs)")
    if store.meta.get("failed_fits"):
        lines.append(f"failed fits  {len(store.meta['failed_fits'])} left out (diverged)")
    return "\n".join(lines)


def run(args) -> int:
    from ..data.store import check_store, load_store

    store = load_store(args.store, check="none" if args.check else "cached")
    report = check_store(store, use_cache=False) if args.check else None
    print(summarize(store))
    if report is not None:
        classes = f"[0, {store.num_classes})" if store.num_classes else "non-negative"
        print(f"check        OK: {report['rows']} rows scanned in {report['seconds']:.2f} s: params finite, "
              f"labels {classes} and one per object, (object, view) unique, splits disjoint and exactly the stored objects"
              + (f"; recorded in {report['record']}" if report["record"] else ""))
    return 0
