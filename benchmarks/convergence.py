#!/usr/bin/env python
"""Step-matched ablations of the training recipe: why supervised DWSNets did not fit their
data (issue 12) and how close weight-space encoders come to the rendered pixels (issue 18).

Every row is one ``ssl-ws train`` (or ``ssl-ws pretrain``) run at a fixed number of
optimizer steps (``trainer.max_steps``), no augmentation, on one store; the table gives
the clean train accuracy (unaugmented, eval mode) at the last evaluation, the test
accuracy at the best validation evaluation and the gap, so a reader sees whether each
setting converged. A row whose ``results.json`` exists is not run again (resumable).

    python benchmarks/convergence.py --store /work/data/fmnist-dwsnets-table0 --suite fmnist
    python benchmarks/convergence.py --store /work/data/digits-inr --suite digits
    python benchmarks/convergence.py --store /work/data/fmnist-dwsnets-table0 --suite encoders
    python benchmarks/convergence.py --store /work/data/digits-inr --suite simclr
    python benchmarks/convergence.py --store /work/data/fmnist-dwsnets-small --suite gap
    python benchmarks/convergence.py --store /work/data/fmnist-dwsnets-small --suite gap-simclr
    python benchmarks/convergence.py --suite fmnist --print-only

Runs land in ``runs/convergence/<suite>/<row>/``. Use ``OMP_NUM_THREADS=1`` and at most
two suites at once on a 2-core machine.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = ["augment.preset=none", "augment.mixup=none", "optim.warmup_steps=0", "trainer.progress_bar=false"]
OLD = ["encoder.norm=none", "optim.lr=0.001"]  # the defaults before issue 12

# name -> (kind, config, overrides): the ablation, one factor at a time from the new default
SUITES = {
    "fmnist": dict(steps=600, every=100, config="configs/supervised/fmnist.yaml", rows={
        "old-default (norm none, lr 1e-3)": OLD,
        "norm none, lr 5e-3": ["encoder.norm=none", "optim.lr=0.005"],
        "norm layer, lr 5e-3": ["encoder.norm=layer", "optim.lr=0.005"],
        "norm batch, lr 1e-3": ["encoder.norm=batch", "optim.lr=0.001"],
        "norm batch, lr 5e-3 (new default)": ["encoder.norm=batch", "optim.lr=0.005"],
        "+ batch 32": ["encoder.norm=batch", "optim.lr=0.005", "data.batch_size=32"],
        "+ weight decay 5e-4": ["encoder.norm=batch", "optim.lr=0.005", "optim.weight_decay=0.0005"],
        "+ 2 layers": ["encoder.norm=batch", "optim.lr=0.005", "encoder.n_layers=2"],
        "+ probe features (64)": ["encoder.norm=batch", "optim.lr=0.005", "encoder.probes=64"],
        "+ raw weights (no normalizer)": ["encoder.norm=batch", "optim.lr=0.005", "data.normalize=false"],
        "+ weight decay 0": ["encoder.norm=batch", "optim.lr=0.005", "optim.weight_decay=0"],
        "+ warmup 100 steps": ["encoder.norm=batch", "optim.lr=0.005", "optim.warmup_steps=100"],
        "+ hidden 32": ["encoder.norm=batch", "optim.lr=0.005", "encoder.hidden=32"],
        "+ paper augmentation": ["encoder.norm=batch", "optim.lr=0.005", "augment.preset=paper"],
        "+ aligned MixUp": ["encoder.norm=batch", "optim.lr=0.005", "augment.mixup=aligned"],
    }),
    # SimCLR on the digits (two fits per digit): temperature and projection head, from the quickstart recipe
    "simclr": dict(kind="pretrain", steps=330, every=110, config="configs/pretrain/digits.yaml", rows={
        "quickstart recipe (T 0.1, head 64 -> 32)": [],
        "T 0.05": ["ssl.temperature=0.05"],
        "T 0.5": ["ssl.temperature=0.5"],
        "head 256 -> 128": ["ssl.proj_hidden=256", "ssl.proj_out=128"],
        "batch 64 pairs": ["data.batch_size=64"],
        "weight decay 0": ["optim.weight_decay=0"],
        "raw weights (no normalizer)": ["data.normalize=false"],
    }),
    # every registry encoder at its own defaults (no config file), lr 5e-3, batch 64
    "encoders": dict(steps=600, every=100, config=None, rows={
        name: [f"encoder.name={name}", "optim.lr=0.005", "data.batch_size=64"]
        for name in ("dwsnet", "nfn", "neural_graph", "statnet", "mlp")
    }),
    # issue 18: how close the weight-space encoders come to the functional view, step-matched
    # with cpu.yaml's recipe (probes 64) on a multi-view store (the small FMNIST-INR store);
    # the rendered-pixel encoders train with the same code, steps and schedule
    "gap": dict(steps=2000, every=250, config="configs/supervised/cpu.yaml", rows={
        "dwsnet + probes 64, 1 view": ["data.max_views=1"],
        "dwsnet + probes 784 (the 28x28 pixel grid), 1 view": ["data.max_views=1", "encoder.probes=784"],
        "pixels-linear, 1 view": ["data.max_views=1", "encoder.name=pixels-linear"],
        "dwsnet + probes 784, 10 views": ["encoder.probes=784"],
        "dwsnet + probes 64, 10 views": [],
        "dwsnet, no probes, 1 view": ["data.max_views=1", "encoder.probes=0"],
        "pixels-cnn, 1 view": ["data.max_views=1", "encoder.name=pixels-cnn"],
        "dwsnet + probes 784 + canonical, 1 view": ["data.max_views=1", "encoder.probes=784", "encoder.canonical=true"],
        "dwsnet + probes 64 + canonical, 1 view": ["data.max_views=1", "encoder.canonical=true"],
        "dwsnet + probes 784 + canonical, 10 views": ["encoder.probes=784", "encoder.canonical=true"],
    }),
    # issue 18's SSL half: SimCLR (two fits of an object as positives) on the probe-feature DWSNet,
    # without and with the paper's augmentations
    "gap-simclr": dict(kind="pretrain", steps=1000, every=250, config="configs/pretrain/cpu.yaml", rows={
        "two fits, no augmentation, probes 784": ["ssl.positives=two_views", "augment.preset=none", "encoder.probes=784"],
        "two fits + paper augmentations, probes 784": ["ssl.positives=two_views", "augment.preset=paper",
                                                       "encoder.probes=784"],
        "two fits + weak augmentations, probes 784": ["ssl.positives=two_views", "augment.preset=weak",
                                                      "encoder.probes=784"],
        "two fits + symmetry augmentations, probes 784": ["ssl.positives=two_views", "augment.preset=symmetry",
                                                          "encoder.probes=784"],
        "two fits + data-agnostic noise, probes 784": ["ssl.positives=two_views", "augment.preset=noise",
                                                       "encoder.probes=784"],
        "one fit + paper augmentations, probes 784": ["ssl.positives=same_fit", "augment.preset=paper",
                                                      "encoder.probes=784"],
        "two fits + paper augmentations, probes 64": ["ssl.positives=two_views", "augment.preset=paper"],
        # is the paper pipeline only slower to learn? (its loss is still falling at 1,000 steps)
        "two fits + paper augmentations, probes 784, 3,000 steps": [
            "ssl.positives=two_views", "augment.preset=paper", "encoder.probes=784", "trainer.max_steps=3000"],
        "two fits, no augmentation, probes 784, 3,000 steps": [
            "ssl.positives=two_views", "augment.preset=none", "encoder.probes=784", "trainer.max_steps=3000"],
    }),
    # issue 18 on the digits (8x8, two fits per digit): configs/supervised/best.yaml as shipped,
    # probes on the digits' own 8x8 pixel grid, and the rendered pixels through a linear layer
    "gap-digits": dict(steps=2000, every=250, config="configs/supervised/best.yaml", rows={
        "best.yaml as shipped (probes 784, canonical form)": [],
        "probes 784, no canonical form": ["encoder.canonical=false"],
        "probes 64 (the 8x8 pixel grid)": ["encoder.probes=64", "encoder.canonical=false"],
        "pixels-linear": ["encoder.name=pixels-linear"],
    }),
    "digits": dict(steps=440, every=88, config="configs/supervised/digits.yaml", rows={
        "old quickstart (norm none, lr 1e-3, hidden 16, 2 layers)": OLD + ["encoder.hidden=16"],
        "norm none, lr 5e-3, hidden 16, 3 layers": ["encoder.norm=none", "optim.lr=0.005", "encoder.hidden=16", "encoder.n_layers=3"],
        "norm layer, lr 5e-3, hidden 16, 3 layers": ["encoder.norm=layer", "optim.lr=0.005", "encoder.hidden=16", "encoder.n_layers=3"],
        "norm batch, lr 5e-3, hidden 16, 3 layers": ["encoder.norm=batch", "optim.lr=0.005", "encoder.hidden=16", "encoder.n_layers=3"],
        "+ probe features (64)": ["encoder.norm=batch", "optim.lr=0.005", "encoder.hidden=16", "encoder.n_layers=3", "encoder.probes=64"],
    }),
}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def command(suite: dict, store: str, out: str, overrides, seed: int):
    config = ["-c", suite["config"]] if suite["config"] else []
    kind = suite.get("kind", "train")
    base = BASE if kind == "train" else ["trainer.progress_bar=false"]  # SimCLR keeps its recipe's augmentation
    return ["ssl-ws", kind, *config, f"data.store={store}", "data.num_workers=0",
            f"output_dir={out}", "name=run", f"seed={seed}", f"trainer.max_steps={suite['steps']}",
            f"eval.every_n_steps={suite['every']}", *base, *overrides]


def result(out: str):
    found = sorted(glob.glob(os.path.join(out, "run", "*", "results.json")))
    return json.load(open(found[-1])) if found else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=sorted(SUITES), required=True)
    ap.add_argument("--store", help="INR store (required unless --print-only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", nargs="*", help="substrings of row names to run (default: all)")
    ap.add_argument("--print-only", action="store_true")
    ap.add_argument("--runs", default=os.path.join(ROOT, "runs", "convergence"))
    args = ap.parse_args(argv)
    suite = SUITES[args.suite]
    ssl = suite.get("kind") == "pretrain"
    if ssl:
        lines = [f"{args.suite}: {suite['steps']} optimizer steps, the recipe's augmentation, seed {args.seed}",
                 "| setting | loss at each evaluation | online kNN at each evaluation | online probe (last) | seconds |",
                 "|---|---|---|---|---|"]
    else:
        lines = [f"{args.suite}: {suite['steps']} optimizer steps, no augmentation, seed {args.seed}",
                 "| setting | clean train acc (last) | first step with train acc >= 0.95 | test acc (best val) | gap | seconds |",
                 "|---|---|---|---|---|---|"]
    cmds = []
    for name, ov in suite["rows"].items():
        out = os.path.join(args.runs, args.suite, f"seed{args.seed}", slug(name))
        cmd = command(suite, args.store or "STORE", out, ov, args.seed)
        cmds.append(f"# {name}\n{shlex.join(cmd)}")
        res = result(out)
        want = not args.rows or any(r in name for r in args.rows)
        if res is None and want and not args.print_only:
            if not args.store:
                ap.error("--store is required to run")
            t0 = time.time()
            os.makedirs(out, exist_ok=True)
            with open(out + ".log", "w") as log:
                # this checkout's code, not whatever checkout the `ssl-ws` on PATH was installed from
                rc = subprocess.call([sys.executable, "-m", "ssl_ws.cli", *cmd[1:]], cwd=ROOT, stdout=log,
                                     stderr=subprocess.STDOUT)
            if rc:
                print(f"{name}: failed (exit {rc}), see {out}.log", file=sys.stderr)
                continue
            res = result(out)
            res["seconds"] = time.time() - t0
            json.dump(res, open(os.path.join(out, "summary.json"), "w"), indent=1, default=float)
        if res is None:
            lines.append(f"| {name} |" + " — |" * (4 if ssl else 5))
            continue
        summ = os.path.join(out, "summary.json")
        secs = json.load(open(summ)).get("seconds") if os.path.exists(summ) else None
        if ssl:
            hist = res["history"]
            losses = " / ".join("%.2f" % h.get("loss", float("nan")) for h in hist)
            knns = " / ".join("%.3f" % h["knn_acc"] for h in hist)
            took = "" if secs is None else "%.0f" % secs
            lines.append(f"| {name} | {losses} | {knns} | {hist[-1]['probe_acc']:.3f} | {took} |")
            if not args.print_only:
                print(lines[-1], flush=True)
            continue
        last = res["history"][-1]
        gap = last["train_acc"] - res["test_acc"]
        fit_step = next((r["step"] for r in res["history"] if r.get("train_acc", 0) >= 0.95), None)
        lines.append(f"| {name} | {last['train_acc']:.3f} | {'never' if fit_step is None else fit_step} | "
                     f"{res['test_acc']:.3f} | {gap:+.3f} | "
                     f"{'' if secs is None else f'{secs:.0f}'} |")
        if not args.print_only:
            print(lines[-1], flush=True)
    print("\n".join(lines))
    print("\ncommands:\n" + "\n".join(cmds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
