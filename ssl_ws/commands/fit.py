"""`ssl-ws fit`: fit several INR views per image of a source and write an INR store
(parsing and printing; the work is :mod:`ssl_ws.inr.build`).

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
import sys
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
    from tqdm import tqdm

    from ..data.sources import load_source
    from ..errors import SslWsError
    from ..devices import resolve_device
    from ..inr.build import fit_store, plan_fit

    if Path(args.out).exists() and not args.overwrite:
        raise SslWsError(f"output {args.out} already exists; pass --overwrite to replace it")
    if args.views < 1 or args.chunk < 1:
        raise SslWsError("--views and --chunk must be positive")
    _check_numbers(args)
    shard = _parse_shard(args.shard)
    workers = _parse_workers(getattr(args, "workers", "auto"))
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
    plan = plan_fit(src, source_name=args.source, limit=args.limit, views=args.views, eval_views=args.eval_views,
                    recipe=args.recipe, steps=args.steps, lr=args.lr, target_psnr=args.target_psnr, hidden=hidden,
                    w0=args.w0, init=args.init, seed=args.seed, split=args.split, shard=shard, chunk=args.chunk)
    device = resolve_device(args.device)
    views_desc = (f"{plan.views} views" if plan.eval_views == plan.views
                  else f"{plan.views} views, {plan.eval_views} for val/test")
    bar = None

    def progress(ev):
        nonlocal bar
        if bar is None:  # first event: the plan is made
            procs = f", {ev['workers']} worker processes" if ev["workers"] > 1 else ""
            saved = f", {ev['chunks_done']} saved" if ev["chunks_done"] else ""
            print(f"fitting {len(plan)} INRs ({len(plan.selected)} images, {views_desc}) of [{plan.spec.describe()}] "
                  f"to {args.source} {src.image_size[0]}x{src.image_size[1]}, recipe {plan.fit_cfg['recipe']}, "
                  f"{ev['chunks']} chunk(s){saved} on {device}{procs}", file=sys.stderr)
            bar = tqdm(total=len(plan), unit="INR", dynamic_ncols=True, file=sys.stderr)
        post = {"chunks": f"{ev['chunks_done']}/{ev['chunks']}"}
        if ev["psnr_median"] is not None:
            post["psnr"] = f"{ev['psnr_median']:.1f}"
        bar.set_postfix(post, refresh=not ev["inrs"])
        bar.update(ev["inrs"])

    try:
        rep = fit_store(plan, src, args.out, device=device, workers=workers, overwrite=args.overwrite,
                        progress=progress, max_chunks=args.max_chunks)
    finally:
        if bar is not None:
            bar.close()
    if rep.stopped:
        print(f"stopped after {rep.new_chunks} new chunk(s) (--max-chunks); run again to resume", file=sys.stderr)
        return 3
    if rep.failed:
        print(f"warning: {rep.failed} fit(s) diverged after retries and are left out "
              f"(listed in meta.json 'failed_fits')", file=sys.stderr)
    counts = ", ".join(f"{k} {v}" for k, v in rep.split_counts.items())
    print(f"wrote {args.out}: {rep.kept} INRs, objects per split: {counts}")
    print(psnr_summary(rep.psnr, plan.fit_cfg["target_psnr"]))
    rate = ""
    if rep.new_chunks and rep.seconds > 0:
        rate = f" ({rep.inr_steps / rep.seconds:.0f} INR-steps/s this run" + (
            f", {rep.workers} worker processes)" if rep.workers > 1 else ")")
    print(f"mean steps {rep.mean_steps:.0f}; fitting took {rep.seconds:.1f} s" + rate)
    return 0


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
