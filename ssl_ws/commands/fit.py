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


def run(args) -> int:
    from ..inr.build import fit_source, psnr_summary

    plan, rep = fit_source(
        args.out, source=args.source, data_dir=args.data_dir, views=args.views, eval_views=args.eval_views,
        limit=args.limit, recipe=args.recipe, steps=args.steps, lr=args.lr, target_psnr=args.target_psnr,
        hidden=args.hidden, layers=args.layers, layer_sizes=args.layer_sizes, w0=args.w0, init=args.init,
        seed=args.seed, split=args.split, shard=args.shard, chunk=args.chunk, device=args.device,
        workers=args.workers, overwrite=args.overwrite, max_chunks=args.max_chunks)
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
