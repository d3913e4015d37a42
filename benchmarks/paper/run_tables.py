#!/usr/bin/env python
"""Run and tabulate the paper benchmarks of issue 8 on FMNIST-INR.

Every row of Tables 0-3 is a list of real ``ssl-ws`` commands (``ROWS`` below). A row
is run once per seed; a step whose results JSON already exists is skipped, and a training
step stopped mid-way continues from its last checkpoint (``--resume``; runs checkpoint every
500 steps), so the script is resumable (kill it, run it again: at most 500 steps are lost). A row that
``results/<scale>.json`` records as finished with the same commands is not trained again when its runs
are absent (a fresh checkout or machine; ``--rerun`` forces it), and a missing store stops the runner
with the command that builds it. After running (or with ``--print-only``)
it prints each table in markdown, mean ± std over the seeds found, followed by the
commands that reproduce every row.

    python benchmarks/paper/run_tables.py --table 0 --scale table0 --seeds 0
    python benchmarks/paper/run_tables.py --table 1 --scale small --seeds 0 1 2
    python benchmarks/paper/run_tables.py --table 2 --rows ssl-none ssl-all --seeds 0
    python benchmarks/paper/run_tables.py --table 1 2 3 --print-only
    python benchmarks/paper/run_tables.py --table 1 --dry-run       # list the commands
    python benchmarks/paper/run_tables.py --table 1 4 --scale small --store /work/data/fmnist-dwsnets-small

Table 3 trains every registry encoder with the best supervised and the best SimCLR recipe of Tables
1 and 2 (``BEST_SUP`` / ``BEST_SSL``). Table 4 is the learning curve: Table 1's 1-view,
best-augmentation and 10-view rows on nested stratified subsets of the training objects
(``data.objects_per_class``), printed also as a curve (a recipe per line, a subset per column) above
the baselines trained on the same objects (``curve_baselines_steps``). Rows that another table already trains with the same commands (Table
3's DWSNet rows, Table 4's ``@all`` points) are shared: read from, recorded as and resumed with their
source row, never trained twice. Every finished row's
metrics (train / test accuracy, the loss at half and at all of the steps, its commands) also go
to ``benchmarks/paper/results/<scale>.json``, tracked in git, so finished rows can be committed
as they come; two runners (one per core, ``OMP_NUM_THREADS=1``, different ``--rows`` or
``--seeds``) may share it.

Data: ``benchmarks/paper/build_data.sh --scale S`` writes ``data/fmnist-inr-<recipe>-S``.
Results: ``runs/paper/<scale>/t<table>/<row>/seed<k>/`` (training runs under
``<name>/<timestamp>/results.json``; evaluator JSONs beside them).

Scale ``table0``: 500/100/300 objects, 1 view (the measured Table 0); ``small``: the
issue's 2,000/1,000/2,000 CPU subset with 10 views; ``full``: 55k/5k/10k with 10 views
(GPU). Epoch counts per scale are in ``SCALES``.

Train accuracy (Table 1) is ``train_acc`` of ``ssl-ws train``'s results.json: the clean
accuracy (one unaugmented view per training object, eval mode) at the best-validation
epoch. Results written before that field existed fall back to the TensorBoard scalar
``train/acc_epoch`` (accuracy on the augmented / mixed batches).

Table 2 is followed by the supervised Table 1 rows of the same scale and seeds (all
labels), so the self-supervised rows can be read beside them.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUP_CFG = "configs/supervised/fmnist.yaml"
PRE_CFG = "configs/pretrain/fmnist.yaml"

# optimizer steps per scale (trainer.max_steps: every row of a table trains equally long,
# whatever its number of views; issue 13); workers: DataLoader processes (0 on the 2-core CPU)
SCALES = {
    "table0": dict(sup_steps=1500, pre_steps=1500, ft_steps=500, workers=0),
    "mini": dict(sup_steps=1500, pre_steps=1500, ft_steps=500, workers=0),
    "small": dict(sup_steps=8000, pre_steps=3000, ft_steps=1000, workers=0),
    "full": dict(sup_steps=40000, pre_steps=20000, ft_steps=5000, workers=4),
}

# The recipe used for Tables 1-3, chosen from Table 0 (TABLE0.md: dwsnets-recipe INRs,
# 21.5 dB, gave 0.367 test accuracy vs 0.239 for 40 dB siren-recipe INRs); --recipe
# overrides it. The winners of Tables 1/2
# used in Table 3; update these after running Tables 0-2.
RECIPE = "dwsnets"
# supervised: chosen from the small-scale Table 1 (TABLES-small.md, 8,000 steps, 2 seeds): one fit +
# the paper's augmentation pipeline + aligned MixUp tested best (0.586 ± 0.011; permutations and sign
# flips alone 0.547 ± 0.015, the mini scale's pick). Self-supervised: chosen from the mini-scale
# seed-0 runs (TABLES-mini.md): two fits as positives and no augmentation gave the best probe/kNN
# (0.338/0.365 at 10 labels per class, 0.375 probe with all); re-pick it from the small-scale Table 2.
BEST_SUP = ["augment.preset=paper", "supervised.mixup=aligned"]
BEST_SSL = ["augment.preset=none", "ssl.positives=two_views"]
# the rows of Tables 1 and 2 that train those recipes (with the configs' own encoder, DWSNet): Table 3's
# DWSNet rows and Table 4's 100% points are these rows, read from their runs, not trained again
BEST_SUP_ROW = "1v-paper+aligned-mixup"
BEST_SSL_ROW = "ssl-none"

# encoder sizes of Table 3 (each encoder's own defaults; the fmnist configs set hidden=16, n_layers=3 for DWSNet)
ENCODERS = {
    "mlp": ["encoder.name=mlp", "encoder.hidden=256", "encoder.n_layers=3"],
    "nfn": ["encoder.name=nfn", "encoder.hidden=32", "encoder.n_layers=3"],
    "neural_graph": ["encoder.name=neural_graph", "encoder.hidden=64", "encoder.n_layers=2"],
    "dwsnet": ["encoder.name=dwsnet", "encoder.hidden=16", "encoder.n_layers=3"],
    "statnet": ["encoder.name=statnet"],
    # configs/supervised/best.yaml's encoder (issue 18): probe features on a 28x28 grid, canonical form
    "dwsnet-probes": ["encoder.name=dwsnet", "encoder.hidden=16", "encoder.n_layers=3", "encoder.probes=784",
                      "encoder.canonical=true"],
    # the functional view's baselines, trained by the same code (the INR rendered on its pixel grid)
    "pixels-linear": ["encoder.name=pixels-linear"],
    "pixels-cnn": ["encoder.name=pixels-cnn"],
}


STORE_OVERRIDE: Optional[str] = None  # --store


def store(recipe: str, scale: str) -> str:
    return STORE_OVERRIDE or f"data/fmnist-inr-{recipe}-{scale}"


# ----------------------------------------------------------------------------- rows
# A step: dict(kind=train|pretrain|eval, cmd=[...], out=<results path or None>).
# ``{pre}`` in an eval command is the best checkpoint of the row's pretrain step.


def sup(name: str, overrides: List[str], ctx) -> Dict:
    d = f"{ctx['dir']}"
    cmd = ["ssl-ws", "train", "--config", SUP_CFG, f"data.store={ctx['store']}", f"output_dir={d}", f"name={name}",
           f"seed={ctx['seed']}", f"trainer.max_steps={ctx['sup_steps']}", f"eval.every_n_steps={max(ctx['sup_steps'] // 10, 1)}",
           f"optim.warmup_steps={ctx['sup_steps'] // 10}", f"data.num_workers={ctx['workers']}",
           "trainer.progress_bar=false", "supervised.mixup=none"] + overrides
    return dict(kind="train", cmd=cmd, out=os.path.join(d, name))


def ssl_steps(name: str, overrides: List[str], ctx, finetune: bool = True) -> List[Dict]:
    d = ctx["dir"]
    pre = ["ssl-ws", "pretrain", "--config", PRE_CFG, f"data.store={ctx['store']}", f"output_dir={d}", f"name={name}",
           f"seed={ctx['seed']}", f"trainer.max_steps={ctx['pre_steps']}", f"eval.every_n_steps={max(ctx['pre_steps'] // 10, 1)}",
           f"optim.warmup_steps={ctx['pre_steps'] // 10}", f"data.num_workers={ctx['workers']}",
           "trainer.progress_bar=false"] + overrides
    steps = [dict(kind="pretrain", cmd=pre, out=os.path.join(d, name))]
    for lpc in ("10", "all"):
        common = ["{pre}", ctx["store"], "--max-views", "1", "--labels-per-class", lpc, "--seed", str(ctx["seed"])]
        steps.append(dict(kind="eval", key=f"probe_{lpc}",
                          cmd=["ssl-ws", "linear-probe"] + common + ["--quiet", "--out", os.path.join(d, f"probe_{lpc}.json")],
                          out=os.path.join(d, f"probe_{lpc}.json")))
        steps.append(dict(kind="eval", key=f"knn_{lpc}",
                          cmd=["ssl-ws", "knn"] + common + ["--quiet", "--out", os.path.join(d, f"knn_{lpc}.json")],
                          out=os.path.join(d, f"knn_{lpc}.json")))
        if finetune:
            ft = ["ssl-ws", "finetune", "{pre}", ctx["store"], f"trainer.max_steps={ctx['ft_steps']}",
                  # evaluated every tenth of the steps, as pre-training and Table 1 are: with 10 labelled
                  # objects per class an epoch is one batch, and evaluating every epoch costs 100x the steps
                  f"eval.every_n_steps={max(ctx['ft_steps'] // 10, 1)}",
                  f"data.num_workers={ctx['workers']}", "trainer.progress_bar=false", "augment.preset=none",
                  # labels: one fit per labelled object, as the probes and the baselines see them (and
                  # Table 1's 1v rows), so what pre-training on every fit adds is the only difference
                  "data.max_views=1",
                  f"output_dir={d}", "--labels-per-class", lpc, "--seed", str(ctx["seed"]),
                  "--out", os.path.join(d, f"finetune_{lpc}.json")]
            steps.append(dict(kind="eval", key=f"finetune_{lpc}", cmd=ft, out=os.path.join(d, f"finetune_{lpc}.json")))
    return steps


def table0(ctx) -> Dict[str, List[Dict]]:
    rows = {}
    for recipe in ("siren", "dwsnets"):
        c = dict(ctx, store=store(recipe, ctx["scale"]))
        rows[f"recipe-{recipe}"] = [sup(f"recipe-{recipe}", ["data.max_views=1", "augment.preset=none"], c)]
    return rows


_ONE = ["data.max_views=1"]
# Table 1's rows: the overrides each adds to the supervised config (Table 4 trains three of them on subsets)
TABLE1_ROWS = {
    "1v-none": _ONE + ["augment.preset=none"],
    "1v-warp": _ONE + ["augment.preset=warp"],
    "1v-data-agnostic": _ONE + ["augment.preset=noise"],
    "1v-symmetry": _ONE + ["augment.preset=symmetry"],
    "1v-symmetry-shift": _ONE + ["augment.preset=symmetry-shift"],
    "1v-paper": _ONE + ["augment.preset=paper"],
    "1v-all": _ONE + ["augment.preset=strong"],
    "1v-plain-mixup": _ONE + ["augment.preset=none", "supervised.mixup=plain"],
    "1v-perm-mixup": _ONE + ["augment.preset=none", "supervised.mixup=permute"],
    "1v-aligned-mixup": _ONE + ["augment.preset=none", "supervised.mixup=aligned"],
    "1v-paper+aligned-mixup": _ONE + ["augment.preset=paper", "supervised.mixup=aligned"],
    "2v-none": ["data.max_views=2", "augment.preset=none"],
    "5v-none": ["data.max_views=5", "augment.preset=none"],
    "10v-none": ["data.max_views=10", "augment.preset=none"],
    "10v-all": ["data.max_views=10", "augment.preset=strong"],
    "10v-best": ["data.max_views=10"] + BEST_SUP,  # 10 views + the best 1-view augmentation
}


def table1(ctx) -> Dict[str, List[Dict]]:
    return {k: [sup(k, v, ctx)] for k, v in TABLE1_ROWS.items()}


def table2(ctx) -> Dict[str, List[Dict]]:
    """SimCLR rows. The paper's SSL claim is that augmentations make good positives; a multi-view
    store also offers *another fit of the same object* as a positive, which needs no augmentation.
    So the table isolates the two: ``ssl-1fit-*`` rows take two augmentations of ONE fit
    (``ssl.positives=same_fit``: the only positives a 1-view data set has), ``ssl-*`` rows take two
    fits of the object (``two_views``), with and without augmentation; both pre-train on the same
    unlabelled INRs (every fit of every training object), so the positives are the only difference.
    ``ssl-1v-paper`` pre-trains on one fit per object: a 1-view data set."""
    tv, one = ["ssl.positives=two_views"], ["ssl.positives=same_fit"]
    spec = {
        # two fits of the object as positives
        "ssl-none": tv + ["augment.preset=none"],
        "ssl-data-agnostic": tv + ["augment.preset=noise"],
        "ssl-weak": tv + ["augment.preset=weak"],
        "ssl-symmetry": tv + ["augment.preset=symmetry"],
        "ssl-warp": tv + ["augment.preset=warp"],
        "ssl-paper": tv + ["augment.preset=paper"],
        "ssl-all": tv + ["augment.preset=strong"],
        "ssl-all+view-mixup": tv + ["augment.preset=strong", "ssl.view_mixup=true"],
        "ssl-all+selfmix": tv + ["augment.preset=strong+selfmix"],
        # one fit: two augmentations of it are the positives
        "ssl-1fit-weak": one + ["augment.preset=weak"],
        "ssl-1fit-symmetry": one + ["augment.preset=symmetry"],
        "ssl-1fit-warp": one + ["augment.preset=warp"],
        "ssl-1fit-paper": one + ["augment.preset=paper"],
        "ssl-1fit-paper+selfmix": one + ["augment.preset=paper+selfmix"],  # MixUp needs no second fit
        "ssl-all-same-fit": one + ["augment.preset=strong"],
        # a 1-view data set: one fit per object is all there is (Table 1's 1v rows; the GPU suite's
        # full-scale SimCLR row); the ssl-1fit rows above pre-train on every fit, one at a time
        "ssl-1v-paper": one + ["augment.preset=paper", "data.max_views=1"],
    }
    return {k: ssl_steps(k, v, ctx) for k, v in spec.items()}


def same_as(t: int, name: str, ctx) -> List[Dict]:
    """Table ``t``'s row ``name`` at ``ctx``'s scale and seed, marked as shared: a row whose commands
    another table already runs (the configs' encoder is DWSNet, so Table 3's DWSNet rows *are* the best
    rows of Tables 1 and 2; Table 4's 100% points are Table 1's rows). Its runs, its record in
    results/<scale>.json and its resumption are the source row's, so it is trained once."""
    steps = TABLES[t](context(t, ctx["scale"], ctx["seed"]))[name]
    for s in steps:
        s["shared"] = (t, name)
    return steps


def source_row(t: int, name: str, steps: List[Dict]):
    """``(table, row)`` whose runs, record and log the row's steps are: the source row of a shared row
    (``same_as``), else the row itself."""
    return steps[0].get("shared", (t, name))


def table3(ctx) -> Dict[str, List[Dict]]:
    rows = {}
    for enc, ov in ENCODERS.items():
        if enc == "dwsnet":  # the configs' encoder (tests/test_paper_tables.py checks they agree)
            rows["dwsnet-supervised"] = same_as(1, BEST_SUP_ROW, ctx)
            rows["dwsnet-ssl"] = same_as(2, BEST_SSL_ROW, ctx)
            continue
        rows[f"{enc}-supervised"] = [sup(f"{enc}-supervised", ["data.max_views=1"] + BEST_SUP + ov, ctx)]
        rows[f"{enc}-ssl"] = ssl_steps(f"{enc}-ssl", BEST_SSL + ov, ctx, finetune=False)
    return rows


# Learning curve (issue 13, item 5): the 1-view, best-augmentation and 10-view rows of Table 1 on
# nested stratified subsets of the training objects (data.objects_per_class; 100% = Table 1's rows).
CURVE_PER_CLASS = (50, 100)  # of the small store's 200 training objects per class: 25% and 50%


# the learning curve's rows (Table 4 name -> Table 1 row): one view, one view + the best augmentation, ten views
CURVE_ROWS = {"1v-none": "1v-none", "1v-best": BEST_SUP_ROW, "10v-none": "10v-none"}


def table4(ctx) -> Dict[str, List[Dict]]:
    rows = {f"{k}@{pc}-per-class": [sup(f"{k}@{pc}-per-class", TABLE1_ROWS[t1] + [f"data.objects_per_class={pc}"], ctx)]
            for pc in CURVE_PER_CLASS for k, t1 in CURVE_ROWS.items()}
    # 100%: every training object, which Table 1 already trains
    rows.update({f"{k}@all": same_as(1, t1, ctx) for k, t1 in CURVE_ROWS.items()})
    return rows


TABLES = {0: table0, 1: table1, 2: table2, 3: table3, 4: table4}


# ----------------------------------------------------------------------------- running
def train_results(run_root: str) -> Optional[str]:
    found = sorted(glob.glob(os.path.join(run_root, "*", "results.json")))
    return found[-1] if found else None


def step_done(step) -> Optional[str]:
    if step["kind"] in ("train", "pretrain"):
        return train_results(step["out"])
    return step["out"] if os.path.exists(step["out"]) else None


def pretrain_ckpt(steps) -> Optional[str]:
    for s in steps:
        if s["kind"] == "pretrain":
            r = train_results(s["out"])
            if r:
                res = json.load(open(r))
                return res.get("best_checkpoint") or res.get("last_checkpoint")
    return None


def render(step, steps) -> List[str]:
    ck = pretrain_ckpt(steps) or "<pretrain best.ckpt>"
    return [ck if a == "{pre}" else a for a in step["cmd"]]


def unfinished_run(step) -> Optional[str]:
    """The run directory of a train / pretrain step that was stopped before it wrote its results
    (its runner killed, the session ended) but kept a last checkpoint: the row continues it with
    ``ssl-ws train|pretrain --resume`` instead of starting over. None when there is none."""
    if step["kind"] not in ("train", "pretrain"):
        return None
    found = sorted(glob.glob(os.path.join(step["out"], "*", "checkpoints", "last.ckpt")))
    return os.path.dirname(os.path.dirname(found[-1])) if found else None


METRIC_OF_KIND = {"train": "test_acc", "pretrain": "loss_end"}  # an eval step records its own ``key``


def recorded_finished(scale: str, t: int, name: str, seed: int, steps) -> bool:
    """True when ``results/<scale>.json`` records the row (its source row, when shared) finished with
    the commands it would run now: every step's metric is there, and every command that names no
    pre-trained checkpoint is the same. runs/ is not tracked, so on a fresh checkout or machine such a
    row is skipped, not trained again for hours (``--rerun`` trains it anyway); a row recorded with
    other commands (another store, ``--sup-steps``) or only in part (a failed step) is run."""
    entry = recorded_entry(scale, *source_row(t, name, steps), seed)
    if len(entry.get("commands", [])) != len(steps):
        return False
    if any(entry.get(METRIC_OF_KIND.get(s["kind"], s.get("key"))) is None for s in steps):
        return False
    return all("{pre}" in s["cmd"] or c == shlex.join(s["cmd"]) for s, c in zip(steps, entry["commands"]))


def missing_store(path: str, scale: str) -> Optional[str]:
    """One-line error when the INR store the rows train on is not there (not built, or its build was
    stopped before it wrote ``meta.json``), with the command that builds it; None when it is there."""
    if os.path.exists(os.path.join(path, "meta.json")):
        return None
    return (f"run_tables: no INR store at {path} (no meta.json: not built, or its build was stopped); build it "
            f"first with `benchmarks/paper/build_data.sh --scale {scale} --recipe {RECIPE} --out {path}` "
            f"(a stopped build resumes), then run this again")


def process_cmd(cmd):
    """The process a step runs: ``ssl-ws X ...`` runs as ``python -m ssl_ws.cli X ...`` from the
    repository root, so a row trains with this checkout's code and the runner's interpreter (a
    worktree's rows used to run whatever checkout the ``ssl-ws`` on PATH was installed from, and
    failed at once when that checkout had moved). The command shown and recorded stays ``ssl-ws``."""
    return [sys.executable, "-m", "ssl_ws.cli", *cmd[1:]] if cmd[0] == "ssl-ws" else cmd


def last_line(log: str, start: int) -> str:
    """The last line a failed step wrote to its log from byte ``start`` on (its error), for the
    one-line failure message."""
    with open(log) as f:
        f.seek(start)
        lines = [ln.strip() for ln in f if ln.strip() and not ln.startswith("# exit")]
    return lines[-1] if lines else "(nothing logged)"


def run_row(steps, dry: bool, log) -> None:
    for step in steps:
        if step_done(step):
            continue
        run = unfinished_run(step)
        cmd = ["ssl-ws", step["kind"], "--resume", run] if run else render(step, steps)
        print("+ " + shlex.join(cmd), flush=True)
        if dry:
            continue
        t0 = time.time()
        with open(log, "a") as f:
            f.write("+ " + shlex.join(cmd) + "\n")
            f.flush()
            start = f.tell()  # where the step's own output begins
            rc = subprocess.call(process_cmd(cmd), cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
            f.write(f"# exit {rc}, {time.time() - t0:.0f} s\n")
        print(f"  exit {rc}, {time.time() - t0:.0f} s (log {log})", flush=True)
        if rc != 0:
            print(f"  step failed: {last_line(log, start)}; the row's later steps are skipped", flush=True)
            return


def record(scale: str, t: int, name: str, seed: int, steps) -> None:
    """Write the row's metrics to benchmarks/paper/results/<scale>.json (tracked in git: runs/
    is not), so finished rows can be committed as they come."""
    m = metrics(steps)
    if not m:
        return
    t, name = source_row(t, name, steps)  # a shared row is recorded once, as its source row
    import fcntl

    path = os.path.join("benchmarks", "paper", "results", f"{scale}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".lock", "w") as lock:  # two runners (one per core) may finish rows at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.load(open(path)) if os.path.exists(path) else {}
        budget = (dict(pre_steps=SCALES[scale]["pre_steps"]) if steps[0]["kind"] == "pretrain"
                  else dict(sup_steps=SCALES[scale]["sup_steps"]))
        data[f"t{t}/{name}/seed{seed}"] = dict(m, **budget, commands=[shlex.join(render(s, steps)) for s in steps])
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)


# ----------------------------------------------------------------------------- reading
def tb_train_acc(run_dir: str, epoch: Optional[int]) -> Optional[float]:
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return None
    files = glob.glob(os.path.join(run_dir, "**", "events.out.tfevents.*"), recursive=True)
    vals = []
    for f in files:
        ea = EventAccumulator(f, size_guidance={"scalars": 0})
        ea.Reload()
        if "train/acc_epoch" in ea.Tags().get("scalars", []):
            vals += [e.value for e in ea.Scalars("train/acc_epoch")]
        elif "train/acc" in ea.Tags().get("scalars", []):
            vals += [e.value for e in ea.Scalars("train/acc")]
    if not vals:
        return None
    return vals[epoch] if epoch is not None and epoch < len(vals) else vals[-1]


def fit_stats(store_dir: str, log: str) -> Dict:
    """PSNR from the store; fitting seconds from build_data.sh's log ("fitting took X s")."""
    import re

    import numpy as np

    psnr = np.load(os.path.join(store_dir, "psnr.npy"))
    meta = json.load(open(os.path.join(store_dir, "meta.json")))
    fit_s = None
    if os.path.exists(log):
        m = re.search(r"fitting took ([0-9.]+) s", open(log).read())
        fit_s = float(m.group(1)) if m else None
    return dict(median=float(np.median(psnr)), p10=float(np.percentile(psnr, 10)), n=len(psnr),
                steps=meta.get("mean_steps"), fit_s=fit_s)


def loss_half_end(results: Dict, key: str) -> Dict[str, float]:
    """``loss_half`` / ``loss_end``: the loss ``key`` of a run's evaluation history at the evaluation
    nearest half its steps and at the last one (the step-matched budget is long enough when these
    are close); empty when the history has no such loss."""
    losses = [(h["step"], h[key]) for h in results.get("history", []) if h.get(key) is not None]
    if not losses:
        return {}
    half = losses[-1][0] / 2
    return dict(loss_half=min(losses, key=lambda sl: abs(sl[0] - half))[1], loss_end=losses[-1][1])


def curve(results: Dict, *keys: str) -> List[List[float]]:
    """``[step, results[key] ...]`` at every evaluation of a run's history: test and clean train
    accuracy of a supervised run, online kNN and loss of a SimCLR run (``--curves`` prints them)."""
    return [[h["step"]] + [h.get(k) for k in keys] for h in results.get("history", []) if "step" in h]


def recorded_entry(scale: str, t: int, name: str, seed: int) -> Dict:
    """The row's entry as ``record`` wrote it to benchmarks/paper/results/<scale>.json (tracked in git:
    metrics, budget and commands); {} when it is not recorded."""
    path = os.path.join(ROOT, "benchmarks", "paper", "results", f"{scale}.json")
    if not os.path.exists(path):
        return {}
    return json.load(open(path)).get(f"t{t}/{name}/seed{seed}", {})


def recorded(scale: str, t: int, name: str, seed: int) -> Dict:
    """The row's recorded metrics: what the tables print where the runs themselves (runs/, not
    tracked) are absent."""
    entry = recorded_entry(scale, t, name, seed)
    return {k: v for k, v in entry.items() if k not in ("commands", "sup_steps", "pre_steps")}


def row_metrics(t: int, scale: str, name: str, seed: int, steps) -> Dict:
    """The row's metrics from its runs, else as recorded in results/<scale>.json (a shared row: as
    its source row was recorded)."""
    return metrics(steps) or recorded(scale, *source_row(t, name, steps), seed)


def metrics(steps) -> Dict[str, float]:
    m: Dict[str, float] = {}
    for s in steps:
        p = step_done(s)
        if not p:
            continue
        r = json.load(open(p))
        if s["kind"] == "train":
            m["test_acc"] = r.get("test_acc")
            m["val_acc"] = r.get("val_acc")
            m["epochs"] = r.get("epochs")
            tr = r.get("train_acc")  # clean (unaugmented, eval mode) train accuracy at the best epoch
            if tr is None:  # results written before ssl-ws train recorded it
                tr = tb_train_acc(os.path.dirname(p), r.get("best_epoch"))
            if tr is not None:
                m["train_acc"] = tr
                m["gap"] = tr - r["test_acc"]
            # loss curve: mean training loss over the eval interval at half the steps and at the end
            m.update(loss_half_end(r, "train_loss"))
            ends = [h["train_acc"] for h in r.get("history", []) if "train_acc" in h]
            if ends:  # clean train accuracy at the last evaluation: has the row fitted its data?
                m["train_end"] = ends[-1]
            m["curve"] = curve(r, "test_acc", "train_acc")
        elif s["kind"] == "pretrain":
            best = r.get("best") or {}
            m["online_knn"] = best.get("knn_acc")
            m.update(loss_half_end(r, "loss"))  # the SimCLR loss: has the row's pre-training flattened?
            m["curve"] = curve(r, "knn_acc", "loss")
        else:
            key = s["key"]
            # linear-probe / knn: "top1" (test; knn: its first --settings entry); finetune: "test_acc"
            r = r.get("results", r)  # evaluator JSONs: {"command", "results": {...}, "config", ...}
            acc = r.get("top1", r.get("test_acc"))
            m[key] = acc
            if key.startswith("finetune") and r.get("run_dir"):
                # clean train accuracy at the best validation evaluation: did the fine-tune fit?
                run = os.path.join(ROOT, r["run_dir"], "results.json")
                if os.path.exists(run):
                    m[key + "_train"] = json.load(open(run)).get("train_acc")
    return {k: v for k, v in m.items() if v is not None}


COLUMNS = {
    0: ["median_psnr", "p10_psnr", "mean_steps", "fit_s", "train_acc", "val_acc", "test_acc", "epochs"],
    1: ["train_acc", "test_acc", "gap", "train_end", "loss_half", "loss_end"],
    2: ["probe_10", "knn_10", "finetune_10", "probe_all", "knn_all", "finetune_all", "finetune_all_train", "online_knn",
        "loss_half", "loss_end"],
    3: ["train_acc", "test_acc", "gap", "probe_10", "knn_10", "probe_all", "knn_all", "online_knn"],
    4: ["train_acc", "test_acc", "gap", "train_end", "loss_half", "loss_end"],
}


COARSE = ("median_psnr", "p10_psnr", "mean_steps", "fit_s", "epochs")  # columns printed to one decimal


def fmt(vals: List[float], coarse: bool = False) -> str:
    if not vals:
        return "—"
    if coarse:  # PSNR, steps, seconds
        return f"{statistics.mean(vals):.1f}" + (f" ± {statistics.stdev(vals):.1f}" if len(vals) > 1 else "")
    return f"{statistics.mean(vals):.3f}" + (f" ± {statistics.stdev(vals):.3f}" if len(vals) > 1 else "")


def print_table(t: int, scale: str, seeds: List[int], rows_filter, dry: bool) -> Dict[str, Dict]:
    """Print Table ``t``; return its rows (name -> ``ssl``: a SimCLR row, ``seeds``: [(seed, metrics)])
    for ``print_curves``, so the metrics are read once."""
    per_seed = {s: TABLES[t](context(t, scale, s)) for s in seeds}
    names = list(per_seed[seeds[0]])
    if rows_filter:
        names = [n for n in names if n in rows_filter]
    cols, table = COLUMNS[t], {}
    print(f"\n### Table {t} (scale {scale}; seeds {' '.join(map(str, seeds))}; mean ± std over seeds with results)\n")
    print("| row | n | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for n in names:
        ms = [row_metrics(t, scale, n, s, per_seed[s][n]) for s in seeds]
        table[n] = dict(ssl=per_seed[seeds[0]][n][0]["kind"] == "pretrain", seeds=list(zip(seeds, ms)))
        if t == 0:
            recipe = n.split("-", 1)[1]
            st = store(recipe, scale)
            if os.path.exists(os.path.join(st, "psnr.npy")):
                f = fit_stats(st, os.path.join("benchmarks", "paper", "logs", f"fit-{recipe}-{scale}.log"))
                for m in ms:
                    m.update(median_psnr=f["median"], p10_psnr=f["p10"], mean_steps=f["steps"], fit_s=f["fit_s"])
        ms_done = [m for m in ms if m]
        cells = [fmt([m[c] for m in ms_done if m.get(c) is not None], coarse=c in COARSE) for c in cols]
        print(f"| {n} | {sum(1 for m in ms if 'test_acc' in m or 'probe_all' in m or 'probe_10' in m)} | " + " | ".join(cells) + " |")
    if t == 2:
        print_supervised_beside(scale, seeds)
    if t in (1, 2, 3):
        print_baselines(scale, seeds)
    if t == 4:
        print_learning_curve(table, scale)
    print("\nCommands (seed {}):\n".format(seeds[0]))
    for n in names:
        for step in per_seed[seeds[0]][n]:
            print(f"- {n}: `{shlex.join(render(step, per_seed[seeds[0]][n]))}`")
    return table


def print_curves(table: Dict[str, Dict]) -> None:
    """Every row's evaluations, one line per seed (``table``: what ``print_table`` returned): test /
    clean train accuracy of a supervised row, online kNN / NT-Xent loss of a SimCLR row. Issue 13 asks
    for the budget to be long enough that the slowest row has flattened: these are the curves that show it."""
    two = (lambda v: "1.0" if round(v, 2) >= 1 else f"{v:.2f}"[1:])  # accuracies without the "0"
    for n, row in table.items():
        runs = [(s, m["curve"]) for s, m in row["seeds"] if m.get("curve")]
        if not runs:
            continue
        ssl = row["ssl"]
        what = "online kNN / loss" if ssl else "test / clean train accuracy"
        steps = max((c for _, c in runs), key=len)
        print(f"\n| {n} ({what}), seed | " + " | ".join(f"{p[0]:,}" for p in steps) + " |")
        print("|---|" + "---|" * len(steps))
        for seed, c in runs:
            cells = [(f"{a:.3f}"[1:] if a is not None else "—") + "/" +
                     ((f"{b:.2f}" if ssl else two(b)) if b is not None else "—") for _, a, b in c]
            print(f"| {seed} | " + " | ".join(cells) + " |")


BASELINE_VIEWS = ("1", "all")  # training fits per object of the baselines (the 1-view rows, the all-view rows)
FEW_LABELS = "10"  # the few-label column of Table 2: labelled training objects per class


def baselines_steps(scale: str, seeds: List[int] = (0,)) -> List[Dict]:
    """``ssl-ws baselines`` on the tables' store: raw-weight LR, rendered-pixel LR and CNN (issue 12),
    trained on one fit / all fits of every training object, and on one fit of the FEW_LABELS objects
    per class that Table 2's ``probe_10`` / ``knn_10`` / ``finetune_10`` of each seed draw."""
    st, steps = store(RECIPE, scale), []
    for v in BASELINE_VIEWS:
        out = os.path.join("benchmarks", "paper", "results", f"{scale}-baselines-{v}view.json")
        steps.append(dict(kind="eval", key=f"baselines_{v}", out=out,
                          group=("1 fit" if v == "1" else "all fits") + " per object",
                          cmd=["ssl-ws", "baselines", st, "--train-views", v, "--eval-views", "1", "--quiet", "--out", out]))
    for seed in seeds:
        out = os.path.join("benchmarks", "paper", "results", f"{scale}-baselines-{FEW_LABELS}lpc-seed{seed}.json")
        steps.append(dict(kind="eval", key=f"baselines_{FEW_LABELS}lpc_seed{seed}", out=out,
                          group=f"{FEW_LABELS} objects per class, 1 fit",
                          cmd=["ssl-ws", "baselines", st, "--train-views", "1", "--eval-views", "1",
                               "--labels-per-class", FEW_LABELS, "--seed", str(seed), "--quiet", "--out", out]))
    return steps


def curve_baselines_steps(scale: str) -> List[Dict]:
    """The baselines on Table 4's subsets: the very objects its rows train on (``sample_per_class`` with
    seed 0, as ``training_rows`` draws ``data.objects_per_class``), with one fit and with all fits per
    object, so each point of the learning curve has its raw-weight / pixel baselines beside it."""
    st, steps = store(RECIPE, scale), []
    for pc in CURVE_PER_CLASS:
        for v in BASELINE_VIEWS:
            out = os.path.join("benchmarks", "paper", "results", f"{scale}-baselines-{v}view-{pc}-per-class.json")
            steps.append(dict(kind="eval", key=f"baselines_{v}_{pc}pc", out=out, per_class=pc, views=v,
                              cmd=["ssl-ws", "baselines", st, "--train-views", v, "--eval-views", "1",
                                   "--labels-per-class", str(pc), "--seed", "0", "--quiet", "--out", out]))
    return steps


BASELINE_NAMES = {"raw-lr": "raw-weight LR", "pixels-lr": "rendered-pixel LR", "pixels-cnn": "small CNN on renders"}


def print_learning_curve(table: Dict[str, Dict], scale: str) -> None:
    """Table 4 as a curve: each recipe's test accuracy (clean train accuracy) at 25%, 50% and 100% of the
    training objects, with the baselines trained on the same objects below it."""
    sizes = [f"{pc}-per-class" for pc in CURVE_PER_CLASS] + ["all"]
    print("\nLearning curve: test accuracy (clean train accuracy), mean ± std over seeds; columns are training "
          "objects per class (" + ", ".join(map(str, CURVE_PER_CLASS)) + ", all):\n")
    print("| recipe | " + " | ".join(sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for k, t1 in CURVE_ROWS.items():
        cells = []
        for size in sizes:
            ms = [m for _, m in table.get(f"{k}@{size}", {}).get("seeds", []) if m.get("test_acc") is not None]
            cells.append(f"{fmt([m['test_acc'] for m in ms])} ({fmt([m['train_acc'] for m in ms if m.get('train_acc') is not None])})"
                         if ms else "—")
        print(f"| {k} ({t1}) | " + " | ".join(cells) + " |")
    curve_steps = curve_baselines_steps(scale)
    outs = {(s["views"], f"{s['per_class']}-per-class"): s["out"] for s in curve_steps}
    outs.update({(v, "all"): s["out"] for s in baselines_steps(scale) for v in BASELINE_VIEWS
                 if s["key"] == f"baselines_{v}"})  # every training object: the baselines of Tables 1-3
    res = {k: json.load(open(o))["results"]["methods"] for k, o in outs.items() if os.path.exists(o)}
    for v in BASELINE_VIEWS:
        for m, label in BASELINE_NAMES.items():
            cells = [f"{r[m]['test_acc']:.3f} ({r[m]['train_acc']:.3f})" if (r := res.get((v, size))) and m in r else "—"
                     for size in sizes]
            print(f"| {label}, {'1 fit' if v == '1' else 'all fits'} per object | " + " | ".join(cells) + " |")
    print("\n" + "\n".join(f"- `{shlex.join(s['cmd'])}`" for s in curve_steps))


def print_baselines(scale: str, seeds: List[int] = (0,)) -> None:
    """The baselines beside every table: what a user would do instead of learning from weights."""
    print("\nBaselines on the same INRs (`ssl-ws baselines`; train / test accuracy, mean ± std over seeds):\n")
    print("| training set | raw-weight LR | rendered-pixel LR | small CNN on renders |")
    print("|---|---|---|---|")
    steps = baselines_steps(scale, seeds)
    groups: Dict[str, List[Dict]] = {}
    for s in steps:  # one printed row per training set, its seeds together
        groups.setdefault(s["group"], []).append(s)
    for label, group in groups.items():
        res = [json.load(open(s["out"]))["results"]["methods"] for s in group if os.path.exists(s["out"])]
        if not res:
            print(f"| {label} | (not run) | | |")
            continue
        cell = lambda m: (f"{fmt([r[m]['train_acc'] for r in res])} / {fmt([r[m]['test_acc'] for r in res])}"
                          if all(m in r for r in res) else "—")
        n = f" ({len(res)} seeds)" if len(group) > 1 else ""
        print(f"| {label}{n} | {cell('raw-lr')} | {cell('pixels-lr')} | {cell('pixels-cnn')} |")
    print("\n" + "\n".join(f"- `{shlex.join(s['cmd'])}`" for s in steps))


# one fit without / with the best and the paper's augmentation, ten fits without / with the best one
SUPERVISED_BESIDE = ["1v-none", "1v-symmetry", "1v-paper", "1v-aligned-mixup", "10v-none", "10v-best"]


def print_supervised_beside(scale: str, seeds: List[int]) -> None:
    """The supervised Table 1 rows (all labels) that Table 2 is read against."""
    per_seed = {s: TABLES[1](context(1, scale, s)) for s in seeds}
    print("\nSupervised DWSNet beside them (Table 1 rows, all labels, same data and seeds):\n")
    print("| supervised row | n | test_acc |")
    print("|---|---|---|")
    for n in SUPERVISED_BESIDE:
        ms = [metrics(per_seed[s][n]) for s in seeds]
        vals = [m["test_acc"] for m in ms if m.get("test_acc") is not None]
        print(f"| {n} | {len(vals)} | {fmt(vals)} |")


def context(t: int, scale: str, seed: int) -> Dict:
    s = SCALES[scale]
    return dict(scale=scale, seed=seed, store=store(RECIPE, scale), dir=f"runs/paper/{scale}/t{t}/{{row}}/seed{seed}", **s)


def _fix_dirs(rows: Dict[str, List[Dict]]) -> Dict[str, List[Dict]]:
    for name, steps in rows.items():
        for s in steps:
            s["cmd"] = [a.replace("{row}", name) for a in s["cmd"]]
            s["out"] = s["out"].replace("{row}", name)
    return rows


for _t, _f in list(TABLES.items()):
    TABLES[_t] = (lambda f: (lambda ctx: _fix_dirs(f(ctx))))(_f)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--table", type=int, nargs="+", default=[0], choices=sorted(TABLES))
    ap.add_argument("--rows", nargs="+", help="only these row names (default: all rows of the table)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--scale", default="small", choices=sorted(SCALES))
    ap.add_argument("--store", help="the store of Tables 1-4 (default data/fmnist-inr-<recipe>-<scale>); keep big "
                    "stores outside the repository, e.g. /work/data/fmnist-dwsnets-small")
    ap.add_argument("--recipe", choices=["siren", "dwsnets"], help="store recipe of Tables 1-3 (default: RECIPE in this file)")
    ap.add_argument("--sup-steps", type=int, help="supervised optimizer steps, every row (default: the scale's)")
    ap.add_argument("--pre-steps", type=int, help="SimCLR optimizer steps, every row (default: the scale's)")
    ap.add_argument("--ft-steps", type=int, help="fine-tuning optimizer steps (default: the scale's)")
    ap.add_argument("--print-only", action="store_true", help="only print the tables from existing results (the "
                    "runs, else what results/<scale>.json recorded)")
    ap.add_argument("--curves", action="store_true", help="after each table, print every row's evaluations per seed "
                    "(supervised: test / clean train accuracy; SimCLR: online kNN / loss)")
    ap.add_argument("--skip-baselines", action="store_true",
                    help="do not run the baselines first (e.g. a second runner while the first runs them)")
    ap.add_argument("--rerun", action="store_true", help="train rows again that results/<scale>.json records as "
                    "finished with the same commands (default: skip them, e.g. on a fresh checkout without runs/)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands that would run, run nothing")
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    if args.recipe:
        globals()["RECIPE"] = args.recipe
    if args.store:
        globals()["STORE_OVERRIDE"] = os.path.abspath(os.path.join(os.getcwd(), args.store)) if not os.path.isabs(args.store) else args.store
    for k in ("sup_steps", "pre_steps", "ft_steps"):
        if getattr(args, k) is not None:
            SCALES[args.scale][k] = getattr(args, k)
    def store_error(steps) -> Optional[str]:  # Tables 1-4 train on one store; Table 0 builds its own
        if args.dry_run or all(step_done(s) for s in steps):
            return None
        return missing_store(store(RECIPE, args.scale), args.scale)

    if not args.print_only and not args.skip_baselines:  # Tables 1-3 share one set, Table 4 has its subsets'
        wanted = ([baselines_steps(args.scale, args.seeds)] if any(t in (1, 2, 3) for t in args.table) else []) + \
                 ([curve_baselines_steps(args.scale)] if 4 in args.table else [])
        for steps in wanted:  # one row each: a failed baseline does not skip the other set
            if err := store_error(steps):
                print(err, file=sys.stderr)
                return 2
            os.makedirs(os.path.join("runs", "paper", args.scale), exist_ok=True)
            run_row(steps, args.dry_run, os.path.join("runs", "paper", args.scale, "baselines-log.txt"))
    for t in args.table:
        if not args.print_only:
            for seed in args.seeds:
                rows = TABLES[t](context(t, args.scale, seed))
                for name, steps in rows.items():
                    if args.rows and name not in args.rows:
                        continue
                    if not args.rerun and recorded_finished(args.scale, t, name, seed, steps):
                        print(f"t{t}/{name}/seed{seed}: finished, as results/{args.scale}.json records "
                              "(skipped; --rerun trains it again)", flush=True)
                        continue
                    if t != 0 and (err := store_error(steps)):
                        print(err, file=sys.stderr)
                        return 2
                    lt, lname = source_row(t, name, steps)  # a shared row logs where its source row does
                    log = os.path.join("runs", "paper", args.scale, f"t{lt}", lname, f"seed{seed}", "log.txt")
                    if not args.dry_run:  # --dry-run writes nothing
                        os.makedirs(os.path.dirname(log), exist_ok=True)
                    run_row(steps, args.dry_run, log)
                    if not args.dry_run:
                        record(args.scale, t, name, seed, steps)
        table = print_table(t, args.scale, args.seeds, args.rows, args.dry_run)
        if args.curves:
            print_curves(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
