"""`ssl-ws fit` throughput: one process with all cores' threads vs `--workers N` (issue 13).

Times the whole command (``ssl-ws fit ... --workers N``) on Fashion-MNIST with the
published recipe, by default 512 INRs of 200 steps, once per worker count:

  * ``--workers 1`` with ``OMP_NUM_THREADS`` = the cores available (one process, torch threads);
  * ``--workers N`` (N processes of one torch thread each, on contiguous slices).

and prints, for each, the fit's own INR-steps/s (the command's "INR-steps/s this run": fitting
only, worker start-up included) and the end-to-end rate (INR-steps over the command's wall
time: interpreter start, data loading and store writing included), and the commands.
It also checks that every run wrote the same store, byte for byte.

Run on an otherwise idle machine: with other jobs on the cores, the numbers mean nothing
(the script warns when the 1-minute load average is above 0.5).

    python benchmarks/fit_workers.py                       # 512 INRs, 200 steps, --workers 1 vs 2
    python benchmarks/fit_workers.py --n 64 --steps 20     # a quick check that it runs
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def ssl_ws_command():
    exe = shutil.which("ssl-ws")
    return [exe] if exe else [sys.executable, "-m", "ssl_ws.cli"]


def main(argv=None):
    cores = available_cpus()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=512, help="INRs (images, one view each; default 512)")
    p.add_argument("--steps", type=int, default=200, help="Adam steps per INR (default 200)")
    p.add_argument("--recipe", default="dwsnets", help="fit recipe (default dwsnets, the published one)")
    p.add_argument("--source", default="fashion-mnist")
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--workers", default=f"1,{cores}" if cores > 1 else "1,2",
                   help=f"comma-separated worker counts to time (default 1,{max(cores, 2)})")
    p.add_argument("--threads", type=int, default=cores,
                   help=f"OMP_NUM_THREADS of the --workers 1 run (default: the {cores} cores available)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each worker count, interleaved; medians reported")
    p.add_argument("--keep", default=None, help="keep the stores in this directory")
    args = p.parse_args(argv)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"cores available {cores}, load average (1 min) {load:.2f}; {args.n} INRs x {args.steps} steps, "
          f"recipe {args.recipe}, source {args.source}")
    if load > 0.5:
        print("warning: the machine is not idle; these numbers are not for the record", file=sys.stderr)

    root = args.keep or tempfile.mkdtemp(prefix="fit_workers_")
    base = ssl_ws_command() + ["fit", "--source", args.source, "--data-dir", args.data_dir, "--limit", str(args.n),
                               "--recipe", args.recipe, "--steps", str(args.steps), "--device", "cpu", "--overwrite"]
    counts = [int(x) for x in args.workers.split(",") if x.strip()]
    runs, stores = {w: [] for w in counts}, []
    try:
        for rep, w in [(r, w) for r in range(max(1, args.repeat)) for w in counts]:
            out = os.path.join(root, f"workers{w}-run{rep}")
            shutil.rmtree(out + ".partial", ignore_errors=True)
            cmd = base + ["--workers", str(w), "--out", out]
            env = dict(os.environ)
            if w == 1:
                env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
            shown = (f"OMP_NUM_THREADS={args.threads} " if w == 1 else "") + "ssl-ws " + shlex.join(cmd[cmd.index("fit"):])
            print(f"$ {shown}", flush=True)
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                sys.exit(f"failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
            m = re.search(r"fitting took ([\d.]+) s \((\d+) INR-steps/s", proc.stdout)
            meta = json.load(open(os.path.join(out, "meta.json")))
            n_rows = len(np.load(os.path.join(out, "psnr.npy")))
            inr_steps = meta["mean_steps"] * n_rows
            runs[w].append((float(m.group(1)) if m else float("nan"), int(m.group(2)) if m else 0, wall,
                            inr_steps / wall))
            stores.append(out)
    finally:
        same = all(
            filecmp.cmp(os.path.join(stores[0], f), os.path.join(s, f), shallow=False)
            for s in stores[1:] for f in sorted(os.listdir(stores[0]))
        ) if len(stores) > 1 else True
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    rows = [(w, args.threads if w == 1 else 1, *np.median(np.array(runs[w], dtype=float), axis=0)) for w in counts]
    print(f"\n{'workers':>7} {'threads':>7} {'fit s':>7} {'fit INR-steps/s':>16} {'wall s':>7} "
          f"{'end-to-end INR-steps/s':>23}" + (f"   (medians of {args.repeat} runs)" if args.repeat > 1 else ""))
    for w, th, fit_s, rate, wall, e2e in rows:
        print(f"{w:>7} {th:>7} {fit_s:>7.1f} {rate:>16.0f} {wall:>7.1f} {e2e:>23.0f}")
    if len(rows) > 1 and rows[0][3]:
        print(f"speed-up of the fit (--workers {rows[-1][0]} vs {rows[0][0]}): {rows[-1][3] / rows[0][3]:.2f}x")
    print(f"stores byte-identical: {same}")
    print("reproduce: python benchmarks/fit_workers.py " + " ".join(sys.argv[1:] if argv is None else argv))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
