"""The GPU suite (benchmarks/gpu/run_suite.py) runs end to end at tiny scale on a CPU.

Same script, same stages and commands as the full-scale GPU run, at ``--scale tiny --device
cpu``: 60 embedded digits fitted with the published recipe (1 view, then 10 views in two
shards merged), the four step-matched supervised rows and SimCLR + linear probe / kNN /
fine-tune, with and without probe features, and the four speed benchmarks. Nothing is
downloaded (the digits ship with scikit-learn). Then: every stage is skipped when run
again (resumable), a stage whose record is removed re-runs only its unfinished steps, and
``--pack`` holds the results without stores or checkpoints.
"""

import json
import os
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "gpu", "run_suite.py")
STAGES = ["fit-1v", "supervised", "supervised-probes", "simclr", "simclr-probes", "simclr-refit", "simclr-refit-probes",
          "speed", "host", "align", "fit-10v-0", "fit-10v-1", "merge-10v", "supervised-10v", "supervised-best", "baselines",
          "compile"]


def suite(out, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    res = subprocess.run([sys.executable, SCRIPT, "--scale", "tiny", "--device", "cpu", "--out", str(out), *args],
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    pytest.importorskip("sklearn.datasets")  # the embedded digits
    out = tmp_path_factory.mktemp("gpu-suite") / "tiny"
    return out, suite(out)


def stage(out, name):
    return json.load(open(out / "stages" / f"{name}.json"))


def test_every_stage_recorded_with_its_numbers(ran):
    out, log = ran
    assert sorted(os.listdir(out / "stages")) == sorted(f"{s}.json" for s in STAGES), log
    assert stage(out, "fit-1v")["results"]["fit-1v"]["inrs"] == 60
    splits = json.load(open(out / "data" / "inr-10v" / "splits.json"))  # ~36/12/12, stratified by label
    n_train = len(splits["train"])
    assert stage(out, "merge-10v")["results"]["merge-10v"]["inrs"] == 10 * n_train + (60 - n_train)  # 1 view val/test
    for name, n in (("supervised", 3), ("supervised-probes", 3), ("supervised-10v", 2), ("supervised-best", 2)):
        rows = stage(out, name)["results"]
        assert len(rows) == n and all(0 <= r["test_acc"] <= 1 and r["global_step"] == 6 for r in rows.values()), rows
    for name in ("simclr", "simclr-probes"):
        res = stage(out, name)["results"]
        assert {k.split(name + "-")[-1] for k in res} >= {"probe-3", "knn-3", "probe-all", "knn-all", "finetune-all"}
        assert all(0 <= v["top1"] <= 1 for k, v in res.items() if "top1" in v)
    base = stage(out, "baselines")["results"]
    assert sorted(base) == ["baselines-1v-pixels-cnn", "baselines-1v-pixels-lr", "baselines-1v-raw-lr"], base
    assert all(0 <= v["test_acc"] <= 1 and 0 <= v["train_acc"] <= 1 for v in base.values()), base
    assert "eager" not in "".join(stage(out, "compile")["results"]["speed-compile"]["lines"])  # --compile: full only
    speed = "\n".join(line for v in stage(out, "speed")["results"].values() for line in v["lines"])
    for what in ("(c) ours", "paper pipeline", "aligned MixUp", "fused", "torch on cpu"):
        assert what in speed, speed
    summary = (out / "summary.md").read_text()
    assert all(f"## {s} " in summary for s in STAGES)


def test_second_run_skips_every_stage_and_resumes_a_stage_by_step(ran):
    out, _ = ran
    again = suite(out)
    assert again.count("skipped") == len(STAGES) and "+ ssl-ws" not in again
    short = suite(out, "--lease", "short")  # the one-budget lease: its stages, in order, all done already
    assert [ln.split("]")[0][1:] for ln in short.splitlines() if ln.endswith("skipped")] == [
        "fit-1v", "baselines", "compile", "supervised-best"], short
    # a stage killed after some of its steps: only the unfinished ones run
    os.remove(out / "stages" / "supervised.json")
    for d in (out / "runs" / "sup-1v-best-aug").iterdir():
        (d / "results.json").unlink()
    rerun = suite(out, "--stage", "supervised")
    assert rerun.count("+ ssl-ws train") == 1 and "name=sup-1v-best-aug " in rerun
    assert len(stage(out, "supervised")["results"]) == 3


def test_sup_steps_trains_rows_of_another_budget_beside_the_first(ran):
    out, _ = ran
    log = suite(out, "--stage", "supervised-best", "--sup-steps", "4")
    assert "name=sup-1v-4steps " in log and "name=sup-1v-best-4steps " in log and "trainer.max_steps=4 " in log
    rows = stage(out, "supervised-best-4steps")["results"]
    assert sorted(rows) == ["sup-1v-4steps", "sup-1v-best-4steps"] and all(r["global_step"] == 4 for r in rows.values())
    assert stage(out, "supervised-best")["results"]["sup-1v"]["global_step"] == 6  # the first budget's record stays
    assert "## supervised-best-4steps " in (out / "summary.md").read_text()


def test_pack_holds_results_not_stores(ran, tmp_path):
    out, _ = ran
    suite(out, "--stage", "none", "--pack", str(tmp_path / "suite.tar.gz"))
    names = tarfile.open(tmp_path / "suite.tar.gz").getnames()
    assert "tiny/summary.md" in names and "tiny/stages/speed.json" in names
    assert not any("/data/" in n or n.endswith(".ckpt") or n.endswith(".npy") for n in names)


def test_pixel_lr_splits_the_images_as_the_full_scale_store_does():
    """The pixel LR baseline reads its split from the suite's full scale, so the two cannot drift."""
    sys.path.insert(0, os.path.dirname(SCRIPT))
    import pixel_lr_fmnist
    import run_suite

    n = [int(k) for k in run_suite.SCALES["full"]["split"].split(",")]
    tr, va, te = pixel_lr_fmnist.full_split()
    assert [s.stop - s.start for s in (tr, va, te)] == n
    assert tr.start == 0 and tr.stop == va.start and va.stop == te.start
    assert te.stop == run_suite.SCALES["full"]["limit"]


def test_in_process_steps_keep_library_log_handlers_on_a_live_file(tmp_path):
    """A log handler made during one in-process step (as Lightning's and inductor's are) writes the
    next step's messages into the next step's log, not into the first step's closed file ('--- Logging
    error ---' with a traceback, as the H100 run of 2026-11-26 printed)."""
    sys.path.insert(0, os.path.dirname(SCRIPT))
    import run_suite

    script = tmp_path / "logs_something.py"
    script.write_text(
        "import logging, sys\n"
        "def main(argv):\n"
        "    lg = logging.getLogger('suite_test_library')\n"
        "    if not lg.handlers:\n"
        "        lg.addHandler(logging.StreamHandler())  # binds sys.stderr as it is now\n"
        "        lg.setLevel(logging.INFO)\n"
        "    lg.info('message of %s', argv[0])\n"
        "    return 0\n")
    logs = []
    for i in range(2):
        step = run_suite.Step(f"s{i}", "script", [str(script), f"step{i}"], str(tmp_path / f"s{i}.txt"))
        assert run_suite.run_step(step, str(tmp_path / f"s{i}.log"), subprocess_mode=False) == 0
        logs.append((tmp_path / f"s{i}.log").read_text())
    assert "message of step0" in logs[0]
    assert "message of step1" in logs[1] and "Logging error" not in logs[1]


def test_stage_beside_lease_and_a_stage_longer_than_the_deadline(tmp_path):
    """on_device.sh always passes --lease: a --stage beside it names what runs (it was ignored). Under
    --deadline the first pending stage of a call starts even when its estimate alone passes the deadline
    (it resumes by step); the next one waits for another call."""
    def dry(*args):
        res = subprocess.run([sys.executable, SCRIPT, "--scale", "full", "--device", "cuda", "--data-dir",
                              str(tmp_path), "--out", str(tmp_path / "out"), "--dry-run", *args],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        return res.stdout

    log = dry("--lease", "1", "--stage", "supervised", "--deadline", "100")
    assert "[supervised] 3 step(s)" in log and "[fit-1v]" not in log and "deadline" not in log, log
    assert "name=sup-1v-best-aug " in log and "augment.preset=paper supervised.mixup=aligned" in log
    log = dry("--lease", "1", "--stage", "fit-1v", "supervised", "--deadline", "100")
    assert "[fit-1v] 1 step(s)" in log and "deadline: supervised" in log and "[supervised]" not in log, log
