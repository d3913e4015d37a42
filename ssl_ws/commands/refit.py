"""`ssl-ws refit`: add re-fitted views to a store with one fit per object (parsing and
printing; the work is :mod:`ssl_ws.inr.refit`).

Every object of ``--splits`` (default: the training split) gets ``--views K`` new INRs,
each fitted from its own fresh init to the stored INR's rendering with the store's recipe;
the output store holds the original rows unchanged beside them. SimCLR then takes two fits
of one object as positives (``ssl.positives=auto`` -> ``two_views``). Resumable like
``ssl-ws fit``: a killed refit continues from ``OUT.partial`` when run again.
"""

from __future__ import annotations

import argparse
import sys


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="input INR store (left unchanged)")
    p.add_argument("--out", required=True, help="output store: the input's rows plus the re-fitted views")
    p.add_argument("--views", type=int, default=1, help="new fits per object (default 1)")
    p.add_argument("--splits", default="train",
                   help="comma-separated splits whose objects are refitted (default train: SimCLR trains there, "
                        "evaluation reads the original view 0)")
    p.add_argument("--recipe", default=None, choices=["siren", "dwsnets"],
                   help="fitting recipe (default: the store's own; dwsnets for an imported store, which records none)")
    p.add_argument("--seed", type=int, default=None, help="init seed (default: the store's fitting seed)")
    p.add_argument("--chunk", type=int, default=512, help="INRs fitted at once and saved together (default 512)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--workers", default="auto", help="processes fitting at once, one torch thread each (default auto)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output store")
    p.add_argument("--max-chunks", type=int, default=None, help=argparse.SUPPRESS)


def run(args) -> int:
    from tqdm import tqdm

    from ..data.store import load_store
    from ..inr.refit import plan_refit, refit_store
    from ..inr.build import parse_workers, psnr_summary

    store = load_store(args.store)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    plan = plan_refit(store, args.views, splits=splits, seed=args.seed, recipe=args.recipe, chunk=args.chunk)
    bar = None

    def progress(ev):
        nonlocal bar
        if bar is None:
            procs = f", {ev['workers']} worker processes" if ev["workers"] > 1 else ""
            print(f"refitting {', '.join(splits)} of {args.store}: {args.views} new fit(s) per object, "
                  f"{ev['chunks']} chunk(s){procs}", file=sys.stderr)
            bar = tqdm(total=len(plan), unit="INR", dynamic_ncols=True, file=sys.stderr)
        if ev["psnr_median"] is not None:
            bar.set_postfix({"psnr": f"{ev['psnr_median']:.1f}"}, refresh=False)
        bar.update(ev["inrs"])

    try:
        rep = refit_store(store, plan, args.out, device=args.device, workers=parse_workers(args.workers),
                          overwrite=args.overwrite, progress=progress, max_chunks=args.max_chunks)
    finally:
        if bar is not None:
            bar.close()
    if rep.stopped:
        print("stopped after --max-chunks; run again to resume", file=sys.stderr)
        return 3
    if rep.failed:
        print(f"warning: {rep.failed} refit(s) diverged after retries and are left out", file=sys.stderr)
    rate = f", {rep.inr_steps / rep.seconds:.0f} INR-steps/s" if rep.seconds > 0 and rep.inr_steps else ""
    print(f"wrote {args.out}: {len(store) + rep.added} INRs ({rep.added} re-fitted views of {rep.objects} objects)")
    print(psnr_summary(rep.psnr, rep.target_psnr) if rep.psnr is not None and rep.psnr.size else "no new INRs")
    print(f"refitting took {rep.seconds:.1f} s{rate}")
    return 0
