#!/usr/bin/env python
"""The GPU suite of issue 17: full-scale FMNIST-INR, step-matched DWSNet rows and speed, in stages.

Every stage is a list of real ``ssl-ws`` commands (or benchmark scripts) and lasts less than
9 minutes on one H100 at ``--scale full`` (estimates and how they were made: README.md beside
this file), so that each stage is one command of a machine that allows 10 minutes a command.
A stage whose results file ``<out>/stages/<stage>.json`` exists is skipped; inside a stage,
a step whose output exists is skipped too, so a stage killed at its limit resumes where it
stopped. Everything lands under one folder (default ``runs/gpu-suite/<scale>/``):

    stages/<stage>.json   wall seconds, device, the commands and the numbers of the stage
    summary.md            every finished stage's numbers as tables (rewritten after each stage)
    logs/<step>.log       what each command printed
    data/                 the INR stores (large: never packed)
    runs/                 training runs (config, TensorBoard events, results.json, checkpoints)

Stages, in order (``--stage NAME`` runs only the named ones; ``--list`` prints them):

1. ``fit-1v`` -- ``ssl-ws fit --recipe dwsnets`` of every object once (55k / 5k / 10k at full scale).
2. ``supervised`` -- DWSNet (``configs/supervised/fmnist.yaml``) on 1 view, 1 view +
   the best augmentation of the small-scale Table 1 (``run_tables.BEST_SUP``: the paper's pipeline +
   aligned MixUp) and 1 view + ``supervised.mixup=aligned`` alone, all at the same ``trainer.max_steps``; ``supervised-probes`` --
   the same with ``encoder.probes=64`` (our strongest DWSNet).
3. ``simclr`` / ``simclr-probes`` -- SimCLR (``configs/pretrain/fmnist.yaml``), then
   ``linear-probe``, ``knn`` (10 labels per class at full scale, 3 at tiny, and all) and ``finetune`` of its encoder: on the
   10-view store with the best self-supervised recipe of the mini-scale tables (two fits of an
   object as positives, no augmentation) when it exists, else on the 1-view store (two ``paper``
   augmentations of one fit).
   ``simclr-refit`` / ``simclr-refit-probes`` -- the same on the 1-view store with two re-fitted views of
   every training object as positives (``ssl.refit_views=2``: one-fit self-supervision at full scale).
4. ``speed`` -- benchmarks/fit_speed.py, augment_speed.py, encoder_speed.py and knn_speed.py on
   ``--device``: fitting INR-steps/s vs the per-INR loop, augmentation INRs/s and aligned MixUp
   pairs/s vs per-sample loops, DWSNet INRs/s (at full scale also eager vs torch.compile), kNN.
5. ``fit-10v-<i>`` -- shard i of n of the 10-view fit (10 views per training object, one per
   validation / test object: the augmentation paper's data set), each shard one command;
   ``merge-10v`` -- ``ssl-ws merge`` of the shards; ``supervised-10v`` -- the 10-view row at the
   same steps, without and with probe features (skipped, and said so, without its store).
6. ``supervised-best`` -- ``sup-1v`` (as in ``supervised``) beside ``configs/supervised/best.yaml`` on
   the 1-view store; ``baselines`` -- ``ssl-ws baselines`` on it (raw-weight LR, rendered-pixel LR,
   CNN); ``compile`` -- encoder_speed.py's eager vs torch.compile alone. With ``fit-1v`` they are
   ``--lease short``: what one 15-minute device budget holds. ``host`` -- benchmarks/host_overhead.py on
   the device (host time per training step); with ``fit-1v`` and ``simclr-refit``, ``--lease one-fit``.

    python benchmarks/gpu/run_suite.py --scale tiny --device cpu            # the CI dry run (~1 min)
    python benchmarks/gpu/run_suite.py --scale full --device cuda --stage fit-1v supervised
    python benchmarks/gpu/run_suite.py --scale full --device cuda --list    # stages and their commands
    python benchmarks/gpu/run_suite.py --scale full --pack $OUT/gpu-suite.tar.gz --stage none

Commands run in this process by default (``ssl_ws.cli.main``; no interpreter, CUDA context or
import per command: seconds each on a GPU machine); ``--subprocess`` runs each in its own
``python -m``-style process instead. ``ssl_ws`` is imported from this checkout, so the GPU
machine needs no ``pip install -e .``, only the wheels of ``bundle_wheels.sh``.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
import time
from typing import Callable, Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

SUP_CFG = "configs/supervised/fmnist.yaml"
BEST_CFG = "configs/supervised/best.yaml"  # issue 18's recipe: probes on a 28x28 grid + canonical form
PRE_CFG = "configs/pretrain/fmnist.yaml"
# the best recipes of the paper tables, from where they are picked (benchmarks/paper/run_tables.py):
# BEST_SUP, the best 1-view augmentation of the small-scale Table 1 (the paper's pipeline + aligned
# MixUp), and BEST_SSL (two fits of an object as positives, no augmentation)
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "paper"))
from run_tables import BEST_SSL, BEST_SUP  # noqa: E402
PROBES = ["encoder.probes=64"]  # our strongest DWSNet: each neuron's activations at an 8x8 grid

# Sizes per scale. full: the DWSNets split of Fashion-MNIST; step counts chosen so that every
# stage stays under 9 minutes of one H100 (README.md: estimates). tiny: seconds on a CPU.
SCALES = {
    "tiny": dict(source="digits", limit=60, split="36,12,12", views=10, fit_steps=30, fit_shards=2, chunk=512,
                 sup_steps=6, pre_steps=6, ft_steps=3, sup_batch=8, pre_batch=8, workers=0, eval_batch=256,
                 probe_args=["--C", "1", "--max-iter", "50"], few_labels="3", baseline_args=["--cnn-epochs", "1"],
                 speed=dict(fit=["--batch", "8", "--steps", "2", "--loop-inrs", "2", "--target-batch", "4",
                                 "--target-steps", "5", "--threads", "1"],
                            augment=["--n", "8", "--repeats", "1", "--threads", "1"],
                            encoder=["--only", "dwsnet", "--batch", "8", "--steps", "1", "--warmup", "1", "--rounds", "1",
                                     "--threads", "1"],
                            knn=["--n-db", "500", "--n-queries", "50", "--ivf-nlist", "4", "--skip-hnsw"],
                            host=["--steps", "3", "--warmup", "1", "--batch", "8", "--objects", "64", "--threads", "1",
                                  "--rows", "loop-floor", "simclr-weak"],
                            align=["--pairs", "8", "--threads", "1"])),
    "full": dict(source="fashion-mnist", limit=70000, split="55000,5000,10000", views=10, fit_steps=None,
                 fit_shards=5, chunk=8192, sup_steps=2000, pre_steps=2000, ft_steps=1000, sup_batch=128,
                 pre_batch=256, workers=4, eval_batch=4096, probe_args=[], few_labels="10", baseline_args=[],
                 speed=dict(fit=["--batch", "4096", "--steps", "30", "--loop-inrs", "8", "--target-batch", "1024"],
                            augment=["--n", "2048", "--repeats", "5"],
                            encoder=["--only", "dwsnet", "--batch", "1024", "--steps", "10", "--rounds", "2", "--compile"],
                            knn=["--skip-hnsw"],
                            host=["--steps", "200", "--batch", "128"], align=["--pairs", "128"])),
}


# Estimated H100 seconds of each full-scale stage (benchmarks/gpu/estimate.py; README.md): --deadline
# starts a stage only if it is expected to end before the deadline.
ESTIMATE_S = {"fit-1v": 170, "supervised": 480, "supervised-probes": 297, "simclr": 195, "simclr-probes": 196,
              "speed": 240, "fit-10v-0": 256, "fit-10v-1": 256, "fit-10v-2": 256, "fit-10v-3": 256, "fit-10v-4": 256,
              "merge-10v": 20, "supervised-10v": 115, "supervised-best": 130, "compile": 70,
              "baselines": 150, "simclr-refit": 380, "simclr-refit-probes": 385, "host": 150, "align": 60}  # supervised-best, compile: as measured on the H200 (2026-11-26);
# supervised: two aligned-MixUp rows since BEST_SUP holds it (206 s each on the H200, 67 s without it)
# "short": what one 15-minute device budget holds (one machine start, two 10-minute commands): the
# full-scale 1-view store, the baselines on the same INRs, eager vs torch.compile, and the paper's
# DWSNet row beside best.yaml's (2026-11-26 on an H200, 2,000 steps: fit 94 s, rows 123 s, compile 66 s).
SUP_STAGES = {"supervised", "supervised-probes", "supervised-best", "supervised-10v"}  # train sup_steps
LEASES = {"1": ["fit-1v", "supervised", "supervised-probes", "simclr", "simclr-probes", "speed"],
          "short": ["fit-1v", "baselines", "compile", "supervised-best"],
          "one-fit": ["fit-1v", "simclr-refit", "host", "align"],
          "2": ["fit-10v-0", "fit-10v-1", "fit-10v-2", "fit-10v-3", "fit-10v-4", "merge-10v", "supervised-10v"]}


# ----------------------------------------------------------------------------- steps and stages
class Step:
    """One command: ``argv`` of ``ssl-ws`` (kind "cli") or of a benchmark script (kind "script");
    ``done`` is the path whose existence means the step finished (a store's meta.json, a results
    JSON, a training run's results.json found by glob)."""

    def __init__(self, name: str, kind: str, argv: List[str], done: str, when: Optional[str] = None):
        self.name, self.kind, self.argv, self.done, self.when = name, kind, argv, done, when

    def finished(self) -> Optional[str]:
        found = sorted(glob.glob(self.done))
        return found[-1] if found else None

    def shell(self) -> str:
        prog = ["ssl-ws"] if self.kind == "cli" else ["python"]
        return shlex.join(prog + [resolve(a) for a in self.argv])


def resolve(arg: str) -> str:
    """``{ckpt:DIR}`` -> the best (else last) checkpoint of the training run under DIR."""
    m = re.fullmatch(r"\{ckpt:(.+)\}", arg)
    if not m:
        return arg
    found = sorted(glob.glob(os.path.join(m.group(1), "*", "results.json")))
    if not found:
        return f"<checkpoint of {m.group(1)}>"
    res = json.load(open(found[-1]))
    return res.get("best_checkpoint") or res.get("last_checkpoint")


class Suite:
    """The stages of one scale, device and output folder."""

    def __init__(self, scale: str, device: str, out: str, data_dir: Optional[str], source: Optional[str],
                 sup_steps: Optional[int] = None):
        self.s = dict(SCALES[scale])
        # --sup-steps: the supervised rows train that many steps; their runs and stage records carry
        # the budget in their names, so rows of two budgets never mistake each other for done
        self.tag = f"-{sup_steps}steps" if sup_steps else ""
        if sup_steps:
            self.s["sup_steps"] = sup_steps
        self.scale, self.device, self.out = scale, device, out
        self.data_dir = data_dir
        self.source = source or self.s["source"]
        self.accel = "gpu" if device.startswith("cuda") else "cpu"
        self.store1 = os.path.join(out, "data", "inr-1v")
        self.store10 = os.path.join(out, "data", "inr-10v")

    # ------------------------------------------------------------------ fit
    def fit(self, out: str, views: int, shard: Optional[str] = None) -> List[str]:
        s = self.s
        argv = ["fit", "--source", self.source, "--recipe", "dwsnets", "--views", str(views), "--eval-views", "1",
                "--limit", str(s["limit"]), "--split", s["split"], "--chunk", str(s["chunk"]), "--device", self.device,
                "--workers", "1", "--out", out]
        if self.data_dir and self.source in ("fashion-mnist", "mnist"):
            argv += ["--data-dir", self.data_dir]
        if s["fit_steps"]:
            argv += ["--steps", str(s["fit_steps"])]
        if shard:
            argv += ["--shard", shard]
        return argv

    def fit_stages(self) -> Dict[str, List[Step]]:
        n = self.s["fit_shards"]
        shards = [f"{self.store10}.shard{i}" for i in range(n)]
        stages = {"fit-1v": [Step("fit-1v", "cli", self.fit(self.store1, 1), os.path.join(self.store1, "meta.json"))]}
        for i in range(n):
            stages[f"fit-10v-{i}"] = [Step(f"fit-10v-{i}", "cli", self.fit(shards[i], 10, f"{i}/{n}"),
                                           os.path.join(shards[i], "meta.json"))]
        stages["merge-10v"] = [Step("merge-10v", "cli", ["merge", *shards, "--out", self.store10],
                                    os.path.join(self.store10, "meta.json"))]
        return stages

    # ------------------------------------------------------------ training
    def common(self, steps: int, name: str, store: str) -> List[str]:
        s = self.s
        return [f"data.store={store}", f"output_dir={os.path.join(self.out, 'runs')}", f"name={name}", "seed=0",
                f"trainer.max_steps={steps}", f"eval.every_n_steps={max(steps // 5, 1)}",
                f"optim.warmup_steps={steps // 10}", f"data.num_workers={s['workers']}",
                f"trainer.accelerator={self.accel}", "trainer.devices=1", "trainer.progress_bar=false",
                f"eval.batch_size={s['eval_batch']}"]

    def record_name(self, stage: str) -> str:
        """``stages/<this>.json``: the stage's name, with the step budget of --sup-steps if it trains
        supervised rows."""
        return stage + (self.tag if stage in SUP_STAGES else "")

    def sup_row(self, name: str, store: str, extra: List[str]) -> Step:
        name += self.tag
        argv = (["train", "--config", SUP_CFG] + self.common(self.s["sup_steps"], name, store)
                + [f"data.batch_size={self.s['sup_batch']}"]
                + ([] if any(e.startswith("supervised.mixup=") for e in extra) else ["supervised.mixup=none"]) + extra)
        return Step(name, "cli", argv, os.path.join(self.out, "runs", name, "*", "results.json"),
                    when=None if store == self.store1 else store)

    def supervised(self, suffix: str, extra: List[str]) -> List[Step]:
        """The 1-view rows: none, the best augmentation, aligned MixUp."""
        one = ["data.max_views=1"]
        return [self.sup_row(f"sup-1v{suffix}", self.store1, one + ["augment.preset=none"] + extra),
                self.sup_row(f"sup-1v-best-aug{suffix}", self.store1, one + BEST_SUP + extra),
                self.sup_row(f"sup-1v-aligned-mixup{suffix}", self.store1,
                             one + ["augment.preset=none", "supervised.mixup=aligned"] + extra)]

    def supervised_best(self) -> List[Step]:
        """The paper's DWSNet on 1 view (``sup-1v``, as in ``supervised``) beside
        ``configs/supervised/best.yaml`` on the same store and steps (its own batch 64, no warm-up)."""
        s, name = self.s, "sup-1v-best" + self.tag
        argv = (["train", "--config", BEST_CFG] + self.common(s["sup_steps"], name, self.store1)
                + [f"data.batch_size={min(64, s['sup_batch'])}", "data.max_views=1", "optim.warmup_steps=0"])
        best = Step(name, "cli", argv, os.path.join(self.out, "runs", name, "*", "results.json"))
        return [self.supervised("", [])[0], best]

    def baselines(self) -> List[Step]:
        """``ssl-ws baselines`` on the 1-view store: raw-weight LR, rendered-pixel LR and CNN, the
        numbers every accuracy of the suite is read against."""
        out = os.path.join(self.out, "results", "baselines-1v.json")
        argv = ["baselines", self.store1, "--train-views", "1", "--device", self.device, "--quiet",
                *self.s["baseline_args"], "--out", out]
        return [Step("baselines-1v", "cli", argv, out)]

    def compile_speed(self) -> List[Step]:
        """benchmarks/encoder_speed.py on ``--device`` with ``--compile``: eager vs torch.compile."""
        return [self.bench_step("compile", "encoder_speed.py", self.s["speed"]["encoder"])]

    def supervised_10v(self) -> List[Step]:
        """The 10-view row, without and with probe features (same steps as the 1-view rows)."""
        ten = ["data.max_views=10", "augment.preset=none"]
        return [self.sup_row("sup-10v", self.store10, ten), self.sup_row("sup-10v-probes", self.store10, ten + PROBES)]

    def simclr(self, suffix: str, extra: List[str], refit: bool = False) -> List[Step]:
        """SimCLR on the 10-view store (two fits of an object as positives); on the 1-view store
        (two augmentations of one fit) when the 10-view fit was not run. ``refit``: on the 1-view
        store with two re-fitted views of every training object as the positives (issue 31's recipe,
        ``ssl.refit_views=2``; the refit is part of the step)."""
        s, name = self.s, f"simclr{'-refit' if refit else ''}{suffix}"
        if refit:
            store = self.store1
            ssl = ["ssl.refit_views=2", f"ssl.refit_dir={os.path.join(self.out, 'refits')}"]
        else:
            store = self.store10 if os.path.exists(os.path.join(self.store10, "meta.json")) else self.store1
            # one fit per object: two augmentations of it (the config's paper preset) are the positives
            ssl = BEST_SSL if store == self.store10 else ["ssl.positives=same_fit"]
        run_root = os.path.join(self.out, "runs", name)
        pre = (["pretrain", "--config", PRE_CFG] + self.common(s["pre_steps"], name, store)
               + [f"data.batch_size={s['pre_batch']}"] + ssl + extra)
        ck, res = f"{{ckpt:{run_root}}}", os.path.join(self.out, "results")
        steps = [Step(name, "cli", pre, os.path.join(run_root, "*", "results.json"))]
        for lpc in (s["few_labels"], "all"):
            ev = [ck, store, "--max-views", "1", "--labels-per-class", lpc, "--device", self.device, "--quiet"]
            out = os.path.join(res, f"{name}-probe-{lpc}.json")
            steps.append(Step(f"{name}-probe-{lpc}", "cli", ["linear-probe"] + ev + s["probe_args"] + ["--out", out], out))
            out = os.path.join(res, f"{name}-knn-{lpc}.json")
            steps.append(Step(f"{name}-knn-{lpc}", "cli", ["knn"] + ev + ["--out", out], out))
        out = os.path.join(res, f"{name}-finetune-all.json")
        ft = ["finetune", ck, store, f"trainer.max_steps={s['ft_steps']}", f"data.num_workers={s['workers']}",
              f"data.batch_size={s['sup_batch']}", f"trainer.accelerator={self.accel}", "trainer.devices=1",
              "trainer.progress_bar=false", "augment.preset=none", f"eval.batch_size={s['eval_batch']}",
              f"output_dir={os.path.join(self.out, 'runs')}", "--out", out]
        steps.append(Step(f"{name}-finetune-all", "cli", ft, out))
        return steps

    # --------------------------------------------------------------- speed
    def bench_step(self, key: str, script: str, args: List[str]) -> Step:
        """``benchmarks/<script> --device D <args>``, its printed figures kept in ``speed/<key>.txt``."""
        return Step(f"speed-{key}", "script", [os.path.join("benchmarks", script), "--device", self.device] + args,
                    os.path.join(self.out, "speed", f"{key}.txt"))

    def speed(self) -> List[Step]:
        sp = self.s["speed"]
        return [self.bench_step(key, script, sp[key]) for key, script in (
            ("fit", "fit_speed.py"), ("augment", "augment_speed.py"), ("encoder", "encoder_speed.py"),
            ("knn", "knn_speed.py"))]

    def host(self) -> List[Step]:
        """benchmarks/host_overhead.py on the device: ms per training step with a near-zero-cost encoder."""
        return [self.bench_step("host", "host_overhead.py", self.s["speed"]["host"])]

    def align(self) -> List[Step]:
        """benchmarks/align_solvers.py on the 1-view store: aligned MixUp's weight matching with scipy against
        batched solvers on the device."""
        return [self.bench_step("align", "align_solvers.py", ["--store", self.store1] + self.s["speed"]["align"])]

    def stages(self) -> Dict[str, Callable[[], List[Step]]]:
        """Stage name -> its steps (built when the stage runs: SimCLR's store depends on the fits).

        Order = priority: everything on the 1-view store first (one 25-minute GPU lease at full
        scale), then the 10-view fit and its rows (a second lease: README.md)."""
        fits = self.fit_stages()
        st: Dict[str, Callable[[], List[Step]]] = {"fit-1v": lambda: fits["fit-1v"]}
        st["supervised"] = lambda: self.supervised("", [])
        st["supervised-probes"] = lambda: self.supervised("-probes", PROBES)
        st["simclr"] = lambda: self.simclr("", [])
        st["simclr-probes"] = lambda: self.simclr("-probes", PROBES)
        st["simclr-refit"] = lambda: self.simclr("", [], refit=True)
        st["simclr-refit-probes"] = lambda: self.simclr("-probes", PROBES, refit=True)
        st["speed"] = self.speed
        st["host"] = self.host
        st["align"] = self.align
        st["supervised-best"] = self.supervised_best
        st["baselines"] = self.baselines
        st["compile"] = self.compile_speed
        st.update({k: (lambda v=v: v) for k, v in fits.items() if k != "fit-1v"})
        st["supervised-10v"] = self.supervised_10v
        return st


# ----------------------------------------------------------------------------- running
def run_step(step: Step, log: str, subprocess_mode: bool) -> int:
    """Run one step, its output to ``log``; 0 on success. Scripts write their stdout to ``step.done``."""
    argv = [resolve(a) for a in step.argv]
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "a") as f:
        f.write(f"+ {step.shell()}\n")
        f.flush()
        if subprocess_mode:
            pre = ([sys.executable, "-c", "import sys; from ssl_ws.cli import main; sys.exit(main())"]
                   if step.kind == "cli" else [sys.executable])
            env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
            if step.kind == "script":
                os.makedirs(os.path.dirname(step.done), exist_ok=True)
                with open(step.done + ".tmp", "w") as o:
                    rc = subprocess.call(pre + argv, cwd=ROOT, stdout=o, stderr=f, env=env)
                _publish(step, rc, f)
                return rc
            return subprocess.call(pre + argv, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env)
        buf = io.StringIO() if step.kind == "script" else f
        outer = sys.stderr
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(f):
            _retarget_log_handlers(f, lambda s: s is outer or getattr(s, "closed", False))
            try:
                rc = in_process(step.kind, argv)
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
            except Exception as exc:  # noqa: BLE001 - a failed step is recorded, the suite goes on
                import traceback

                traceback.print_exc(file=f)
                rc = 1
            finally:
                _retarget_log_handlers(outer, lambda s: s is f)
        _release()
        if step.kind == "script":
            f.write(buf.getvalue())
            os.makedirs(os.path.dirname(step.done), exist_ok=True)
            with open(step.done + ".tmp", "w") as o:
                o.write(buf.getvalue())
            _publish(step, rc, f)
        return rc


def _retarget_log_handlers(stream, which: Callable[[object], bool]) -> None:
    """Point every ``logging.StreamHandler`` whose stream satisfies ``which`` at ``stream``.

    An in-process step runs with stderr redirected to its own log file, and the libraries it imports
    (Lightning, torch's inductor) make their log handlers then, on that file. Before each step the
    handlers on the suite's stderr (or on a closed file) move to the step's log; after it they move
    back. Without this a handler kept the first step's closed file and every later message of it
    printed ``--- Logging error ---`` with a traceback instead of the message."""
    import logging

    loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    for lg in loggers:
        for h in lg.handlers:
            if type(h) is logging.StreamHandler and which(h.stream):
                h.setStream(stream)


def _release() -> None:
    """After an in-process command: free its loaders' worker processes and its cached GPU memory."""
    import gc

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _publish(step: Step, rc: int, log) -> None:
    if rc == 0:
        os.replace(step.done + ".tmp", step.done)
    else:
        log.write(f"# exit {rc}\n")


def in_process(kind: str, argv: List[str]) -> int:
    if kind == "cli":
        from ssl_ws.cli import main

        return int(main(argv) or 0)
    path = os.path.join(ROOT, argv[0])
    spec = importlib.util.spec_from_file_location(f"_suite_{os.path.basename(path)[:-3]}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return int(mod.main(argv[1:]) or 0)


def run_stage(suite: Suite, name: str, steps: List[Step], subprocess_mode: bool, dry: bool) -> Optional[Dict]:
    record = os.path.join(suite.out, "stages", f"{suite.record_name(name)}.json")
    if os.path.exists(record):
        print(f"[{name}] done ({record}); skipped", flush=True)
        return None
    t_stage, done = time.perf_counter(), []
    print(f"[{name}] {len(steps)} step(s)", flush=True)
    for step in steps:
        if step.when and not os.path.exists(os.path.join(step.when, "meta.json")):
            print(f"  skip {step.name}: no store {step.when} (its fit stages have not run)", flush=True)
            done.append(dict(name=step.name, cmd=step.shell(), skipped=f"no store {step.when}"))
            continue
        prev = step.finished()
        if prev:
            done.append(dict(name=step.name, cmd=step.shell(), seconds=None, rc=0, out=prev, resumed=True))
            continue
        print(f"  + {step.shell()}", flush=True)
        if dry:
            continue
        t0 = time.perf_counter()
        rc = run_step(step, os.path.join(suite.out, "logs", f"{step.name}.log"), subprocess_mode)
        secs = time.perf_counter() - t0
        print(f"    exit {rc}, {secs:.1f} s", flush=True)
        done.append(dict(name=step.name, cmd=step.shell(), seconds=round(secs, 2), rc=rc, out=step.finished()))
        if rc != 0:
            print(f"[{name}] step {step.name} failed (log {suite.out}/logs/{step.name}.log): stage not recorded",
                  flush=True)
            return dict(failed=step.name)
    if dry:
        return None
    waiting = [s for s in done if s.get("skipped")]
    if waiting:  # not recorded: the stage runs once its store exists
        print(f"[{name}] not recorded: {len(waiting)} step(s) wait for a store", flush=True)
        return None
    rec = dict(stage=suite.record_name(name), scale=suite.scale, device=suite.device, device_name=device_name(suite.device),
               seconds=round(time.perf_counter() - t_stage, 2), steps=done, results=results_of(done))
    os.makedirs(os.path.dirname(record), exist_ok=True)
    with open(record + ".tmp", "w") as f:
        json.dump(rec, f, indent=1)
    os.replace(record + ".tmp", record)
    print(f"[{name}] recorded {record} ({rec['seconds']:.1f} s)", flush=True)
    return rec


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device)) if torch.cuda.is_available() else "cuda (absent)"
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


# ----------------------------------------------------------------------------- reading results
def results_of(steps: List[Dict]) -> Dict[str, Dict]:
    """The numbers of each finished step: fit PSNR and speed, train/test accuracy, evaluator top-1,
    benchmark figures (their printed lines)."""
    out = {}
    for s in steps:
        p = s.get("out")
        if not p:
            continue
        if p.endswith("meta.json"):
            out[s["name"]] = store_numbers(os.path.dirname(p), s)
        elif p.endswith(".txt"):
            out[s["name"]] = {"lines": [ln for ln in open(p).read().splitlines() if ln.strip()]}
        else:
            r = json.load(open(p))
            res = r.get("results", r)  # evaluator JSONs: {"command", "results": {...}, ...}
            if "methods" in res:  # ssl-ws baselines: one row per method
                for m, v in res["methods"].items():
                    out[f"{s['name']}-{m}"] = {k: v.get(k) for k in ("train_acc", "val_acc", "test_acc", "seconds")}
            elif "history" in r or "test_acc" in r or "best" in r:  # a training run's results.json
                losses = [h["train_loss"] for h in r.get("history", []) if "train_loss" in h]
                best = r.get("best") or {}
                out[s["name"]] = {k: v for k, v in dict(
                    train_acc=r.get("train_acc"), val_acc=r.get("val_acc"), test_acc=r.get("test_acc"),
                    loss_end=losses[-1] if losses else None, global_step=r.get("global_step"),
                    online_knn=best.get("knn_acc"), online_probe=best.get("probe_acc"),
                    seconds=s.get("seconds")).items() if v is not None}
            else:  # an evaluator's JSON
                out[s["name"]] = {"top1": res.get("top1", res.get("test_acc")), "seconds": s.get("seconds")}
    return out


def store_numbers(store: str, step: Dict) -> Dict:
    import numpy as np

    psnr = np.load(os.path.join(store, "psnr.npy"), mmap_mode="r")
    meta = json.load(open(os.path.join(store, "meta.json")))
    n = dict(inrs=int(len(psnr)), median_psnr=float(np.median(psnr)), p10_psnr=float(np.percentile(psnr, 10)),
             mean_steps=meta.get("mean_steps"), seconds=step.get("seconds"))
    log = os.path.join(os.path.dirname(os.path.dirname(store)), "logs", f"{step['name']}.log")
    if os.path.exists(log):
        m = re.search(r"fitting took ([0-9.]+) s \(([0-9]+) INR-steps/s", open(log).read())
        if m:
            n.update(fit_seconds=float(m.group(1)), inr_steps_per_s=int(m.group(2)))
    return n


def write_summary(out: str) -> str:
    """``summary.md``: one table per finished stage (numbers) and the commands."""
    lines = [f"# GPU suite results ({out})", ""]
    for p in sorted(glob.glob(os.path.join(out, "stages", "*.json")), key=os.path.getmtime):
        rec = json.load(open(p))
        lines += [f"## {rec['stage']} -- {rec['seconds']:.0f} s on {rec['device_name']}", ""]
        rows = [(k, v) for k, v in rec["results"].items() if "lines" not in v]
        if rows:
            cols = sorted({c for _, v in rows for c in v})
            lines += ["| step | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
            for k, v in rows:
                lines.append(f"| {k} | " + " | ".join(_cell(v.get(c)) for c in cols) + " |")
            lines.append("")
        for k, v in rec["results"].items():
            if "lines" in v:
                lines += [f"`{k}`:", "", "```", *v["lines"], "```", ""]
        skipped = [s for s in rec["steps"] if s.get("skipped")]
        lines += [f"- skipped {s['name']}: {s['skipped']}" for s in skipped]
        lines += [f"- `{s['cmd']}`" for s in rec["steps"] if not s.get("skipped")] + [""]
    path = os.path.join(out, "summary.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def pack(out: str, dest: str) -> None:
    """A tar.gz of the results (stage records, summary, logs, evaluator JSONs, training runs'
    results.json and config.yaml) without stores, checkpoints or event files: small enough to
    come back from the GPU machine."""
    keep = re.compile(r"(stages/.*\.json|summary\.md|logs/.*\.log|results/.*\.json|speed/.*\.txt|"
                      r"runs/.*/(results\.json|config\.yaml))$")
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    with tarfile.open(dest, "w:gz") as tar:
        for dirpath, dirnames, files in os.walk(out):
            dirnames[:] = [d for d in dirnames if d != "data"]
            for fn in files:
                p = os.path.join(dirpath, fn)
                rel = os.path.relpath(p, out)
                if keep.search(rel):
                    tar.add(p, arcname=os.path.join(os.path.basename(os.path.normpath(out)), rel))
    print(f"packed {dest} ({os.path.getsize(dest) / 1e3:.0f} kB)")


def default_data_dir() -> Optional[str]:
    """Fashion-MNIST's IDX files: ``$FMNIST_DIR``, the checkout's ``.fmnist/`` (how they travel to a
    GPU machine), or Debian's package."""
    for d in (os.environ.get("FMNIST_DIR"), os.path.join(ROOT, ".fmnist"), "/usr/share/datasets/fashion-mnist"):
        if d and os.path.exists(os.path.join(d, "train-images-idx3-ubyte.gz")):
            return d
    return None


def main(argv=None) -> int:
    doc = __doc__.split("\n\n")
    ap = argparse.ArgumentParser(description=doc[0], epilog="\n\n".join(doc[1:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(SCALES), default="tiny")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--stage", nargs="+", default=None, help="stages to run, in the suite's order (default: all; "
                    "'none' runs nothing, e.g. with --pack)")
    ap.add_argument("--out", default=None, help="results folder (default runs/gpu-suite/<scale>)")
    ap.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder (default: $FMNIST_DIR, .fmnist/, "
                    "/usr/share/datasets/fashion-mnist)")
    ap.add_argument("--source", default=None, help="image source of the fits (default: the scale's; tiny: digits)")
    ap.add_argument("--subprocess", action="store_true", help="each command in its own process")
    ap.add_argument("--lease", choices=sorted(LEASES), help="the stages of GPU lease 1 (1-view store), 2 "
                    "(10-view store) or short (one 15-minute budget: fit-1v baselines compile supervised-best) at full "
                    "scale, instead of --stage")
    ap.add_argument("--deadline", type=float, default=None, help="seconds: start no stage whose estimated time "
                    "(ESTIMATE_S, full scale) would end past this, except the first pending one of a call; run the "
                    "same command again for the rest")
    ap.add_argument("--sup-steps", type=int, default=None, metavar="N",
                    help="supervised rows train N optimizer steps instead of the scale's (full: 2,000); their "
                    "runs and stage records are named with -<N>steps")
    ap.add_argument("--list", action="store_true", help="print the stages and their commands, run nothing")
    ap.add_argument("--dry-run", action="store_true", help="print the commands that would run, run nothing")
    ap.add_argument("--pack", default=None, help="write a tar.gz of the results (no stores, no checkpoints) here")
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    out = args.out or os.path.join("runs", "gpu-suite", args.scale)
    suite = Suite(args.scale, args.device, out, args.data_dir or default_data_dir(), args.source, args.sup_steps)
    stages = suite.stages()
    # --stage names the stages to run, also beside --lease (on_device.sh always passes one)
    names = ([n for n in args.stage if n != "none"] if args.stage is not None
             else LEASES[args.lease] if args.lease else list(stages))
    unknown = [n for n in names if n not in stages]
    if unknown:
        ap.error(f"unknown stage(s) {unknown}; stages: {' '.join(stages)}")
    if args.list:
        for n in stages:
            print(f"{n}:")
            for s in stages[n]():
                print(f"  {s.shell()}")
        return 0
    if suite.source == "fashion-mnist" and not suite.data_dir and any(n.startswith("fit") for n in names):
        print("error: Fashion-MNIST not found: --data-dir, $FMNIST_DIR or a copy in .fmnist/ (README.md)", file=sys.stderr)
        return 2
    t0, failed, started = time.perf_counter(), [], False
    for i, n in enumerate(names):
        est = ESTIMATE_S.get(n, 0) if args.scale == "full" else 0
        if n in SUP_STAGES:  # the estimates are for the full scale's 2,000 steps
            est *= suite.s["sup_steps"] / SCALES["full"]["sup_steps"]
        pending = not os.path.exists(os.path.join(out, "stages", f"{suite.record_name(n)}.json"))
        # the first pending stage of a call always starts: one estimated past the deadline on its own
        # would otherwise never run; it resumes by step if the call is stopped
        if pending and args.deadline and started and time.perf_counter() - t0 + est > args.deadline:
            print(f"deadline: {n} (~{est} s) would end after {args.deadline:.0f} s; not started. Left: "
                  f"{' '.join(names[i:])} -- run the same command again", flush=True)
            break
        rec = run_stage(suite, n, stages[n](), args.subprocess, args.dry_run)
        started = started or pending
        if rec and rec.get("failed"):
            failed.append(n)
        elif rec:
            write_summary(out)
    if names and not args.dry_run:
        print(f"suite: {len(names)} stage(s) in {time.perf_counter() - t0:.1f} s; summary {write_summary(out)}"
              + (f"; FAILED: {' '.join(failed)}" if failed else ""), flush=True)
    if args.pack:
        pack(out, args.pack)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
