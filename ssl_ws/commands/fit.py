"""`ssl-ws fit`: fit several INR views per image of a source and write an INR store.

Work is cut into chunks of ``--chunk`` INRs (object-major: all views of an image are
neighbours). Each finished chunk is saved to ``<out>.partial/`` at once; the same command
run again skips the saved chunks, so a killed run resumes and yields the same store,
byte for byte, as an uninterrupted one. ``--workers N`` fits with N processes of one torch
thread each (default: one per CPU core), each on a contiguous slice of the INRs, saving
chunks to the same directory (:mod:`ssl_ws.inr.chunked`); the store is the same, byte for
byte, for any N. ``--shard i/n`` fits the i-th of n contiguous slices of the objects (same
splits everywhere), e.g. on other machines; ``ssl-ws merge`` joins the shard stores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default="digits",
                   help="digits (default), fashion-mnist, mnist, a .npz/.npy file, or a folder of class folders")
    p.add_argument("--data-dir", default=None, help="directory of the IDX files (fashion-mnist, mnist)")
    p.add_argument("--out", required=True, help="output store directory")
    p.add_argument("--views", type=int, default=1, help="independent fits per image (default 1)")
    p.add_argument("--eval-views", type=int, default=None,
                   help="fits per validation/test image (default: --views); e.g. --views 10 --eval-views 1 "
                        "fits many views to train on and one to evaluate, as the augmentation paper's data set")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--recipe", default="siren", choices=["siren", "dwsnets"],
                   help="initialisation + optimiser recipe (default siren; dwsnets = the published one)")
    p.add_argument("--steps", type=int, default=None, help="max Adam steps per INR (default: recipe, 1000)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: recipe)")
    p.add_argument("--target-psnr", type=float, default=None, help="early stop per INR at this PSNR (default 40 dB)")
    p.add_argument("--hidden", type=int, default=32, help="hidden width (default 32)")
    p.add_argument("--layers", type=int, default=2, help="number of hidden layers (default 2)")
    p.add_argument("--layer-sizes", default=None, help="hidden widths, e.g. '32,32' (overrides --hidden/--layers)")
    p.add_argument("--w0", type=float, default=30.0, help="SIREN frequency factor (default 30)")
    p.add_argument("--init", default="independent", choices=["independent", "shared"],
                   help="independent: view k of image i starts from its own random init (seed, i, k), as the "
                        "published data sets; shared: view k of every image starts from one init (seed, k), so "
                        "weights of one view are comparable across images (use it for tiny images such as digits)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisations and splits (default 0)")
    p.add_argument("--split", default="0.8,0.1,0.1",
                   help="train,val,test sizes by object: fractions or counts (default 0.8,0.1,0.1)")
    p.add_argument("--shard", default=None, help="i/n: fit only the i-th of n slices of the objects (0-based)")
    p.add_argument("--chunk", type=int, default=512, help="INRs fitted at once and saved together (default 512)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--workers", default="auto",
                   help="processes fitting at once, one torch thread each (default auto: one per CPU core "
                        "available, fewer for small fits; 1 on a GPU)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output store")
    p.add_argument("--max-chunks", type=int, default=None, help=argparse.SUPPRESS)  # debug: stop after k new chunks


def _parse_shard(text):
    from ..errors import SslWsError

    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise SslWsError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise SslWsError(f"--shard i/n needs 0 <= i < n, got {text!r}")
    return i, n


def _parse_workers(text):
    from ..errors import SslWsError

    if text is None or str(text).strip().lower() == "auto":
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise SslWsError(f"--workers must be a positive integer or 'auto', got {text!r}")
    return n


def psnr_summary(psnr, target) -> str:
    import numpy as np

    psnr = np.asarray(psnr, dtype=np.float64)
    if psnr.size == 0:
        return "no INRs"
    q10, q50, q90 = np.percentile(psnr, [10, 50, 90])
    return (f"PSNR dB: median {q50:.2f}, p10 {q10:.2f}, p90 {q90:.2f}, min {psnr.min():.2f}, "
            f"max {psnr.max():.2f}; {100.0 * np.mean(psnr >= target - 1e-6):.1f}% >= {target:g} dB")


def run(args) -> int:
    import numpy as np

    from ..data.sources import load_source
    from ..data.store import make_splits, parse_split_sizes
    from ..errors import SslWsError, user_os_errors
    from ..inr.fit import RECIPES
    from ..inr.partial import claim_partial
    from ..weights import INRSpec

    out = Path(args.out)
    partial = Path(str(out) + ".partial")
    if out.exists() and not args.overwrite:
        raise SslWsError(f"output {out} already exists; pass --overwrite to replace it")
    if args.views < 1 or args.chunk < 1:
        raise SslWsError("--views and --chunk must be positive")
    _check_numbers(args)
    shard = _parse_shard(args.shard)
    workers = _parse_workers(getattr(args, "workers", "auto"))
    sizes = parse_split_sizes(args.split)
    if args.layer_sizes:
        try:
            hidden = [int(x) for x in args.layer_sizes.split(",") if x.strip()]
        except ValueError:
            raise SslWsError(f"--layer-sizes must be comma-separated integers, got {args.layer_sizes!r}") from None
    else:
        hidden = [args.hidden] * args.layers
    if not hidden or min(hidden) < 1:
        raise SslWsError("the INR needs at least one hidden layer of positive width")

    src = load_source(args.source, data_dir=args.data_dir, limit=args.limit)
    spec = INRSpec((2, *hidden, src.channels), activation="sine", w0=args.w0, output_offset=0.5)
    rec = RECIPES[args.recipe]
    fit_cfg = {
        "recipe": rec.name,
        "init": {"siren": "first layer U(+-1/d_in)", "dwsnets": "first layer U(+-sqrt(6/d_in)/w0)"}[rec.first_layer]
        + "; other hidden layers U(+-sqrt(6/d_in)/w0); hidden biases 0; output layer U(+-1/sqrt(d_in))",
        "optimizer": "adam",
        "loss": "mse over pixels and channels",
        "steps": rec.steps if args.steps is None else int(args.steps),
        "lr": rec.lr if args.lr is None else float(args.lr),
        "target_psnr": rec.target_psnr if args.target_psnr is None else float(args.target_psnr),
        "betas": list(rec.betas),
        "eps": rec.eps,
        "seed": int(args.seed),
        "max_retries": 2,
        "init_scheme": args.init,
        "init_key": "inr_keys(seed, object_id, view_id)" if args.init == "independent" else "inr_keys(seed, 0, view_id)",
    }
    n_obj = len(src)
    all_ids = np.arange(n_obj, dtype=np.int64)
    splits = make_splits(all_ids, src.labels, sizes, seed=args.seed)
    selected = np.array(sorted(o for v in splits.values() for o in v), dtype=np.int64)
    if shard is not None:
        i, n = shard
        selected = selected[i * len(selected) // n : (i + 1) * len(selected) // n]
    eval_views = args.views if args.eval_views is None else args.eval_views
    if args.views < 1 or eval_views < 1:
        raise SslWsError(f"--views and --eval-views must be positive, got {args.views} and {eval_views}")
    n_views = np.where(np.isin(selected, splits["train"]), args.views, eval_views).astype(np.int64)
    obj_rows = np.repeat(selected, n_views)
    view_rows = np.arange(len(obj_rows), dtype=np.int64) - np.repeat(np.cumsum(n_views) - n_views, n_views)
    n_inr = len(obj_rows)
    if n_inr == 0:
        raise SslWsError("nothing to fit: no objects selected (check --limit, --split and --shard)")
    source_desc = dict(src.description, source=args.source, limit=args.limit, num_images=n_obj)
    config = {
        "spec": spec.to_dict(), "fit": fit_cfg, "views": args.views, "eval_views": eval_views, "source": source_desc,
        "split_sizes": list(sizes), "shard": list(shard) if shard else None, "chunk": args.chunk,
    }

    # one writer per --out (a lock held until we exit), a full disk is one line
    hint = f"; finished chunks stay in {partial}: free space and run the same command again"
    with claim_partial(partial), user_os_errors(f"cannot write {out}", hint):
        if out.exists() and not args.overwrite:  # another fit finished it while we prepared
            raise SslWsError(f"output {out} already exists; pass --overwrite to replace it")
        return _fit_claimed(args, out, partial, src, spec, rec, fit_cfg, config, splits, selected, obj_rows,
                            view_rows, eval_views, sizes, shard, workers, source_desc)


def _check_numbers(args) -> None:
    """Refuse numbers that would fit nothing (0 steps) or run blind (a NaN target)."""
    import math

    from ..errors import SslWsError

    if args.steps is not None and args.steps < 1:
        raise SslWsError(f"--steps must be at least 1, got {args.steps}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise SslWsError(f"--lr must be a positive number, got {args.lr}")
    if args.target_psnr is not None and not math.isfinite(args.target_psnr):
        raise SslWsError(f"--target-psnr must be a finite number of dB (e.g. 1000 to never stop early), "
                         f"got {args.target_psnr}")
    if not (math.isfinite(args.w0) and args.w0 > 0):
        raise SslWsError(f"--w0 must be a positive number, got {args.w0}")
    if args.limit is not None and args.limit < 1:
        raise SslWsError(f"--limit must be at least 1, got {args.limit}")
    if args.eval_views is not None and args.eval_views < 1:
        raise SslWsError(f"--eval-views must be positive, got {args.eval_views}")


def _fit_claimed(args, out, partial, src, spec, rec, fit_cfg, config, splits, selected, obj_rows, view_rows,
                 eval_views, sizes, shard, workers, source_desc) -> int:
    """The fit proper, in the claimed ``partial`` directory: resume, fit, write the store."""
    import numpy as np
    import torch
    from tqdm import tqdm

    from ..data.store import write_store
    from ..errors import SslWsError
    from ..inr.chunked import FitJob, default_workers, fit_chunked
    from ..inr.fit import inr_keys
    from ..inr.partial import LOCK_NAME, clear_partial

    n_inr = len(obj_rows)
    # ---------------------------------------------------------------- resume
    try:
        old = json.loads((partial / "config.json").read_text())
    except (OSError, ValueError):
        old = None
    if old != config:
        if any(p.name != LOCK_NAME for p in partial.iterdir()):
            if not args.overwrite:
                raise SslWsError(f"{partial} holds chunks of a different fit; delete it or pass --overwrite")
            clear_partial(partial)
        (partial / "config.json").write_text(json.dumps(config, sort_keys=True))

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise SslWsError(f"device {args.device!r} is not available: {exc}") from None
    keys = inr_keys(args.seed, obj_rows if args.init == "independent" else np.zeros_like(obj_rows), view_rows)
    job = FitJob(spec=spec.to_dict(), recipe=rec.name, steps=fit_cfg["steps"], lr=fit_cfg["lr"],
                 target_psnr=fit_cfg["target_psnr"], max_retries=fit_cfg["max_retries"], device=str(device))
    if workers is None:
        workers = default_workers(device, n_inr, fit_cfg["steps"], src.image_size[0] * src.image_size[1])
    views_desc = f"{args.views} views" if eval_views == args.views else f"{args.views} views, {eval_views} for val/test"
    t0 = time.perf_counter()
    bar = None

    def progress(ev):
        nonlocal bar
        if bar is None:  # first event: the plan is made
            procs = f", {ev['workers']} worker processes" if ev["workers"] > 1 else ""
            saved = f", {ev['chunks_done']} saved" if ev["chunks_done"] else ""
            print(f"fitting {n_inr} INRs ({len(selected)} images, {views_desc}) of [{spec.describe()}] "
                  f"to {args.source} {src.image_size[0]}x{src.image_size[1]}, recipe {rec.name}, "
                  f"{ev['chunks']} chunk(s){saved} on {device}{procs}", file=sys.stderr)
            bar = tqdm(total=n_inr, unit="INR", dynamic_ncols=True, file=sys.stderr)
        post = {"chunks": f"{ev['chunks_done']}/{ev['chunks']}"}
        if ev["psnr_median"] is not None:
            post["psnr"] = f"{ev['psnr_median']:.1f}"
        bar.set_postfix(post, refresh=not ev["inrs"])
        bar.update(ev["inrs"])

    try:
        fit = fit_chunked(job, src.images, obj_rows, keys.numpy(), partial, chunk=args.chunk, workers=workers,
                          progress=progress, max_chunks=args.max_chunks)
    finally:
        if bar is not None:
            bar.close()
    if fit.stopped:
        print(f"stopped after {fit.new_chunks} new chunk(s) (--max-chunks); run again to resume", file=sys.stderr)
        return 3
    new_chunks, inr_steps, cat = fit.new_chunks, fit.new_inr_steps, fit.results
    elapsed = time.perf_counter() - t0

    failed = cat["failed"].astype(bool)
    keep = ~failed
    meta = {
        "spec": spec.to_dict(),
        "class_names": src.class_names,
        "image_size": list(src.image_size),
        "channels": src.channels,
        "num_views": args.views,
        "eval_views": eval_views,
        "source": source_desc,
        "fit": fit_cfg,
        "splits": {"sizes": list(sizes), "seed": int(args.seed), "stratified_by": "label", "by": "object"},
        "shard": list(shard) if shard else None,
        "coordinates": "pixel (row r, col c) at (x, y) = (linspace(-1,1,W)[c], linspace(-1,1,H)[r]), row-major",
        "failed_fits": [[int(o), int(v)] for o, v in zip(obj_rows[failed], view_rows[failed])],
        "retried_fits": [[int(o), int(v), int(r)] for o, v, r in
                         zip(obj_rows[cat["retries"] > 0], view_rows[cat["retries"] > 0], cat["retries"][cat["retries"] > 0])],
        "mean_steps": float(cat["steps"][keep].mean()) if keep.any() else 0.0,
    }
    if failed.any():
        print(f"warning: {int(failed.sum())} fit(s) diverged after retries and are left out "
              f"(listed in meta.json 'failed_fits')", file=sys.stderr)
    kept_objs = set(np.unique(obj_rows[keep]).tolist())
    shard_splits = {name: [o for o in ids if o in kept_objs] for name, ids in splits.items()}
    write_store(
        out, params=cat["params"][keep], labels=src.labels[obj_rows[keep]], object_ids=obj_rows[keep],
        view_ids=view_rows[keep], psnr=cat["psnr"][keep], splits=shard_splits, meta=meta, overwrite=args.overwrite,
    )
    shutil.rmtree(partial, ignore_errors=True)
    counts = ", ".join(f"{k} {len(v)}" for k, v in shard_splits.items())
    print(f"wrote {out}: {int(keep.sum())} INRs, objects per split: {counts}")
    print(psnr_summary(cat["psnr"][keep], fit_cfg["target_psnr"]))
    print(f"mean steps {meta['mean_steps']:.0f}; fitting took {elapsed:.1f} s"
          + (f" ({inr_steps / elapsed:.0f} INR-steps/s this run"
             + (f", {fit.workers} worker processes)" if fit.workers > 1 else ")") if new_chunks and elapsed > 0 else ""))
    return 0
