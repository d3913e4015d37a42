"""A hostile user's second pass (issue 32): out-of-range and non-finite config values, values
Lightning does not know, paths that cannot hold a run. Each case runs ``ssl-ws pretrain`` /
``ssl-ws train`` in-process and must end in exit 2 with one ``error:`` line, before a run
directory (or the output directory) exists."""

import pytest

from test_corrupt_inputs import _store, assert_one_line, run_cli


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return _store(tmp_path_factory.mktemp("hostile") / "store")


PRETRAIN_VALUES = [
    ("optim.lr=1e30", "optim.lr must be positive and at most 10.0"),
    ("optim.lr=nan", "optim.lr must be a finite number"),
    ("optim.lr=0", "optim.lr must be positive"),
    ("optim.weight_decay=-1", "optim.weight_decay must be at least 0"),
    ("optim.weight_decay=inf", "optim.weight_decay must be a finite number"),
    ("optim.warmup_epochs=-2", "optim.warmup_epochs must be at least 0"),
    ("optim.warmup_steps=-3", "optim.warmup_steps must be at least 0"),
    ("ssl.temperature=nan", "ssl.temperature must be a finite number"),
    ("ssl.temperature=-0.1", "ssl.temperature must be positive"),
    ("ssl.proj_out=0", "ssl.proj_out must be at least 1"),
    ("ssl.refit_views=-1", "ssl.refit_views must be at least 0"),
    ("data.num_workers=-1", "data.num_workers must be at least 0"),
    ("data.eval_max_views=0", "data.eval_max_views must be at least 1"),
    ("eval.batch_size=0", "eval.batch_size must be at least 1"),
    ("eval.knn_k=0", "eval.knn_k must be at least 1"),
    ("trainer.num_nodes=0", "trainer.num_nodes must be at least 1"),
    ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val must be positive"),
    ("seed=-1", "seed must be at least 0"),
    ("trainer.precision=17", "trainer.precision='17' is not one Lightning knows"),
    ("trainer.strategy=dpp", "trainer.strategy='dpp' is not one Lightning knows; did you mean 'ddp'?"),
    ("trainer.accelerator=quantum", "trainer.accelerator='quantum' is not one Lightning knows"),
    ("name=../escape", "name must be a plain directory name"),
    ("name=a/b", "name must be a plain directory name"),
]

TRAIN_VALUES = [
    ("supervised.label_smoothing=nan", "supervised.label_smoothing must be a finite number"),
    ("supervised.label_smoothing=1.5", "supervised.label_smoothing must be at least 0 and at most 1"),
    ("supervised.encoder_lr_factor=-1", "supervised.encoder_lr_factor must be at least 0"),
    ("augment.mixup_alpha=0", "augment.mixup_alpha must be positive"),
    ("supervised.mixup_alpha=-1", "augment.mixup_alpha must be positive"),
]


@pytest.mark.parametrize("command,value,want", [("pretrain", *c) for c in PRETRAIN_VALUES]
                         + [("train", *c) for c in TRAIN_VALUES])
def test_bad_values_are_refused_before_a_run_exists(store, tmp_path, capsys, command, value, want):
    out = tmp_path / "runs"
    args = [command, f"data.store={store}", f"output_dir={out}", value]
    rc, _, err = run_cli(capsys, *args)
    assert_one_line(rc, err, args, want)
    assert not out.exists()


def test_gpu_asked_for_on_a_machine_without_one(store, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    args = ["pretrain", f"data.store={store}", f"output_dir={tmp_path / 'runs'}", "trainer.accelerator=gpu"]
    rc, _, err = run_cli(capsys, *args)
    assert_one_line(rc, err, args, "this machine has no CUDA GPU")


def test_output_dir_that_is_a_file(store, tmp_path, capsys):
    f = tmp_path / "results.txt"
    f.write_text("not a directory")
    for out in (f, f / "below"):
        args = ["pretrain", f"data.store={store}", f"output_dir={out}"]
        rc, _, err = run_cli(capsys, *args)
        assert_one_line(rc, err, args, "is a file, not a directory")
    assert f.read_text() == "not a directory"


# ------------------------------------------------------------ diverged runs
def test_a_loss_that_stops_being_finite_stops_the_run_without_numbers(tmp_path, capsys):
    import json

    import torch

    from ssl_ws.train.objectives import OBJECTIVES, register_objective
    from ssl_ws.train.simclr import SimCLRModule
    from _train_helpers import overrides, tiny_store

    class Diverging(SimCLRModule):
        def pair_loss(self, v1, v2):
            out = super().pair_loss(v1, v2)
            if self.global_step >= 2:  # the third optimizer step diverges
                out["loss"] = out["loss"] * torch.tensor(float("nan"))
            return out

    store = tiny_store(tmp_path / "store")
    register_objective("diverging", Diverging)
    try:
        args = ["pretrain", *overrides(store, tmp_path / "runs", "ssl.objective=diverging", "trainer.max_epochs=4",
                                      "data.batch_size=8", "trainer.log_every_n_steps=2",
                                      "trainer.checkpoint_every_n_steps=1")]
        rc, out, err = run_cli(capsys, *args)
    finally:
        OBJECTIVES.pop("diverging", None)
    assert_one_line(rc, err, args, "training diverged: the training loss is not finite at step")
    assert "final:" not in out  # no accuracies printed
    (run,) = (tmp_path / "runs" / "pretrain").iterdir()
    res = json.loads((run / "results.json").read_text())
    assert res["status"] == "failed" and "diverged" in res["error"] and res["global_step"] <= 4
    # the checkpoints hold finite weights only
    for ckpt in (run / "checkpoints").glob("*.ckpt"):
        state = torch.load(ckpt, weights_only=False)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), ckpt


def test_a_completed_run_says_so(tmp_path):
    from ssl_ws.train.runs import run_pretrain
    from _train_helpers import cfg, tiny_store

    res = run_pretrain(cfg("pretrain", tiny_store(tmp_path / "store"), tmp_path / "runs"))
    assert res["status"] == "completed"


# ------------------------------------------------------------ logs a scheduler can keep
def test_progress_in_a_log_file_is_status_lines_not_bar_redraws(tmp_path, capsys):
    from _train_helpers import overrides, tiny_store

    args = ["pretrain", *overrides(tiny_store(tmp_path / "store"), tmp_path / "runs", "trainer.max_epochs=2",
                                  "trainer.progress_bar=true")]
    rc, out, err = run_cli(capsys, *args)  # under pytest stdout is no terminal
    assert rc == 0, err
    assert "\r" not in out + err
    assert "step 6/6 (100%)" in err and "evaluation at step 6: knn_acc=" in err


# ------------------------------------------------------------ metadata, bounded and regular files
def _copy(store, tmp_path):
    import shutil

    dst = tmp_path / "s"
    shutil.copytree(store, dst)
    return dst


def _edit_meta(store_dir, fn, raw=None):
    import json

    p = store_dir / "meta.json"
    if raw is not None:
        p.write_text(raw(p.read_text()))
        return
    meta = json.loads(p.read_text())
    fn(meta)
    p.write_text(json.dumps(meta))


META_CASES = [
    ("w0 NaN", None, lambda t: t.replace('"w0": 30.0', '"w0": NaN'), "NaN is not a JSON number"),
    ("w0 negative", lambda m: m["spec"].update(w0=-30.0), None, "w0 must be a finite positive number"),
    ("w0 zero", lambda m: m["spec"].update(w0=0), None, "w0 must be a finite positive number"),
    ("offset infinite", None, lambda t: t.replace('"output_offset": 0.5', '"output_offset": Infinity'),
     "Infinity is not a JSON number"),
    ("offset huge", lambda m: m["spec"].update(output_offset=1e400), None, "not a JSON number"),
    ("layer size fractional", lambda m: m["spec"].update(layer_sizes=[2, 8.5, 8, 1]), None, "whole numbers"),
    ("layer size huge", lambda m: m["spec"].update(layer_sizes=[2, 10**9, 8, 1]), None, "at most"),
    ("image_size huge", lambda m: m.update(image_size=[10**9, 10**9]), None, "image_size must be"),
    ("duplicate key", None, lambda t: t.replace('"w0": 30.0', '"w0": 30.0, "w0": 1.0'), "duplicate key 'w0'"),
]


@pytest.mark.parametrize("name,edit,raw,want", META_CASES, ids=[c[0] for c in META_CASES])
def test_hostile_store_metadata_is_refused_in_one_line(store, tmp_path, capsys, name, edit, raw, want):
    s = _copy(store, tmp_path)
    _edit_meta(s, edit, raw)
    assert '"format"' in (s / "meta.json").read_text()
    for args in (["info", s], ["pretrain", f"data.store={s}", f"output_dir={tmp_path / 'runs'}"]):
        rc, _, err = run_cli(capsys, *args)
        assert_one_line(rc, err, args, want)
    assert not (tmp_path / "runs").exists()


def test_split_ids_must_be_integers_not_booleans(store, tmp_path, capsys):
    import json

    s = _copy(store, tmp_path)
    splits = json.loads((s / "splits.json").read_text())
    splits["test"] = [True] + splits["test"][1:]
    (s / "splits.json").write_text(json.dumps(splits))
    rc, _, err = run_cli(capsys, "info", s)
    assert_one_line(rc, err, ["info"], "not an integer object id")


def test_a_store_file_that_is_a_device_or_a_fifo(store, tmp_path, capsys):
    import os

    s = _copy(store, tmp_path)
    (s / "splits.json").unlink()
    os.symlink("/dev/zero", s / "splits.json")
    rc, _, err = run_cli(capsys, "info", s)
    assert_one_line(rc, err, ["info"], "is a device; expected a regular file")
    s2 = tmp_path / "s2"
    __import__("shutil").copytree(store, s2)
    (s2 / "meta.json").unlink()
    os.mkfifo(s2 / "meta.json")
    rc, _, err = run_cli(capsys, "info", s2)  # would block forever on open()
    assert_one_line(rc, err, ["info"], "is a FIFO; expected a regular file")


def test_yaml_config_of_nested_aliases_is_refused(store, tmp_path, capsys):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    args = ["pretrain", "-c", bomb, f"data.store={store}", f"output_dir={tmp_path / 'runs'}"]
    rc, _, err = run_cli(capsys, *args)
    assert_one_line(rc, err, args, "expands to more than")


@pytest.fixture(scope="module")
def index(store, tmp_path_factory):
    from test_corrupt_inputs import _encoder
    from ssl_ws.cli import main

    d = tmp_path_factory.mktemp("hostile-index")
    enc = _encoder(d / "encoder.pt")
    assert main(["index", enc, store, "--out", str(d / "index"), "--quiet"]) == 0
    return str(d / "index")


def test_hostile_query_images(index, tmp_path, capsys):
    import os

    import numpy as np
    from PIL import Image

    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    bomb = tmp_path / "bomb.png"
    Image.new("1", (9000, 9000)).save(bomb)  # 10 KB on disk, 81 Mpx decoded
    hot = tmp_path / "hot.tiff"
    Image.fromarray(np.full((8, 8), 200.0, np.float32), mode="F").save(hot)  # floats in 0..255, not 0..1
    cases = [(fifo, "is a FIFO"), (bomb, "pixels, over the limit"), (hot, "values outside [0, 1]")]
    for path, want in cases:
        args = ["query", index, "--image", path]
        rc, _, err = run_cli(capsys, *args)
        assert_one_line(rc, err, args, want)


# ------------------------------------------------------------ an index knows its store
def test_query_refuses_a_store_rewritten_since_the_index(tmp_path, capsys):
    import numpy as np

    from test_corrupt_inputs import _encoder
    from ssl_ws.cli import main

    s = _store(tmp_path / "store")
    enc = _encoder(tmp_path / "encoder.pt")
    assert main(["index", enc, s, "--out", str(tmp_path / "index"), "--quiet"]) == 0
    rc, out, err = run_cli(capsys, "query", tmp_path / "index", "--id", 60)
    assert rc == 0, err
    _store(tmp_path / "store-new", seed=1)  # `fit --overwrite` of the same path: same shape, other INRs
    for name in ("params.npy", "labels.npy"):
        np.save(tmp_path / "store" / name, np.load(tmp_path / "store-new" / name))
    for args in (["query", tmp_path / "index", "--id", 60],
                 ["query", tmp_path / "index", "--id", 60, "--store", tmp_path / "store"],
                 ["query", tmp_path / "index", "--id", 60, "--png", tmp_path / "q.png"]):
        rc, _, err = run_cli(capsys, *args)
        assert_one_line(rc, err, args, "changed since the index was built")


# ------------------------------------------------------------ locked runs, atomic checkpoints, same-run resume
def test_a_second_resume_of_a_running_run_is_refused(tmp_path, capsys):
    import glob
    import signal
    import subprocess
    import sys
    import time

    from _train_helpers import overrides, tiny_store

    ov = overrides(tiny_store(tmp_path / "store"), tmp_path / "runs", "trainer.max_epochs=300",
                   "trainer.checkpoint_every_n_steps=1", "data.batch_size=4", "encoder.name=mlp", "encoder.hidden=8")
    ov = [o for o in ov if not o.startswith(("encoder.num_heads", "encoder.head_hidden"))]
    proc = subprocess.Popen([sys.executable, "-m", "ssl_ws.cli", "pretrain", *ov],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not glob.glob(str(tmp_path / "runs" / "pretrain" / "*" / "checkpoints" / "last.ckpt")):
            assert proc.poll() is None and time.time() < deadline, "the first run ended before a checkpoint"
            time.sleep(0.05)
        (run,) = glob.glob(str(tmp_path / "runs" / "pretrain" / "*"))
        before = open(f"{run}/config.yaml").read()
        args = ["pretrain", "--resume", run]
        rc, _, err = run_cli(capsys, *args)
        assert_one_line(rc, err, args, "is being written by another process (pid")
        assert open(f"{run}/config.yaml").read() == before
        assert proc.poll() is None  # the first run goes on
    finally:
        os_kill = __import__("os").kill
        os_kill(proc.pid, signal.SIGKILL)
        proc.wait()


def test_resume_refuses_keys_that_change_the_run_and_a_longer_schedule(tmp_path, capsys):
    from _train_helpers import overrides, tiny_store

    args = ["pretrain", *overrides(tiny_store(tmp_path / "store"), tmp_path / "runs", "trainer.max_steps=3")]
    rc, _, err = run_cli(capsys, *args)
    assert rc == 0, err
    (run,) = (tmp_path / "runs" / "pretrain").iterdir()
    for extra, want in ((["optim.lr=0.5", "data.batch_size=8"], "these keys change it: data.batch_size=8 (was 16), optim.lr=0.5"),
                        (["trainer.max_steps=30"], "--resume with trainer.max_steps=30 (the run was laid out for 3)")):
        args = ["pretrain", "--resume", run, *extra]
        rc, _, err = run_cli(capsys, *args)
        assert_one_line(rc, err, args, want)
    rc, _, err = run_cli(capsys, "pretrain", "--resume", run, "eval.knn_k=3")  # how it is evaluated may change
    assert rc == 0, err


def test_a_copied_run_resumes_into_its_own_best_checkpoint(tmp_path):
    import json
    import shutil

    import pytorch_lightning as pl

    from ssl_ws.config import load_config
    from ssl_ws.train.runs import run_pretrain
    from _train_helpers import cfg, tiny_store

    class StopAfterEpochs(pl.Callback):
        def on_train_epoch_end(self, trainer, module):
            trainer.should_stop = True

    first = run_pretrain(cfg("pretrain", tiny_store(tmp_path / "store"), tmp_path / "a", "trainer.max_epochs=3",
                             "data.batch_size=8"), callbacks=[StopAfterEpochs()])
    original = first["run_dir"]
    snapshot = {p.name: p.read_bytes() for p in (tmp_path / "a").rglob("*.ckpt")}
    copy = str(tmp_path / "copy")
    shutil.copytree(original, copy)
    res = run_pretrain(load_config("pretrain", f"{copy}/config.yaml"), resume=copy)
    assert res["global_step"] == 18 and res["best_checkpoint"] == f"{copy}/checkpoints/best.ckpt"
    assert sorted(p.name for p in (tmp_path / "copy" / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert {p.name: p.read_bytes() for p in (tmp_path / "a").rglob("*.ckpt")} == snapshot  # the original untouched
    best = max(res["history"], key=lambda r: r["knn_acc"])
    import torch

    saved = torch.load(res["best_checkpoint"], weights_only=False)["ssl_ws_history"]
    assert saved[-1]["step"] == best["step"]  # best.ckpt holds the evaluation results.json calls best
    assert json.loads(open(f"{copy}/results.json").read())["status"] == "completed"


def test_a_failed_checkpoint_write_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    import torch

    from ssl_ws.train.checkpointing import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    path = tmp_path / "best.ckpt"
    io.save_checkpoint({"step": 1}, path)
    good = path.read_bytes()

    def full_disk(obj, fh, *a, **k):
        fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError):
        io.save_checkpoint({"step": 2}, path)
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["best.ckpt"]


# ------------------------------------------------------------ more one-line refusals
def test_query_jsonl_into_a_missing_directory(index, tmp_path, capsys):
    ids = tmp_path / "ids.txt"
    ids.write_text("0 1 2")
    args = ["query", index, "--ids-file", ids, "--jsonl", tmp_path / "nowhere" / "out.jsonl"]
    rc, _, err = run_cli(capsys, *args)
    assert_one_line(rc, err, args, "does not exist")


def test_import_of_a_text_file_as_pth_and_a_word_as_label(tmp_path, capsys):
    import json

    import torch

    sd = {"seq.0.weight": torch.randn(8, 2), "seq.0.bias": torch.randn(8), "seq.1.weight": torch.randn(8, 8),
          "seq.1.bias": torch.randn(8), "seq.2.weight": torch.randn(1, 8), "seq.2.bias": torch.randn(1)}
    torch.save(sd, tmp_path / "a.pth")
    (tmp_path / "t.pth").write_text("hello, I am text")
    one = {"path": ["a.pth"], "label": [0]}
    for name, train, want in (("text", {"path": ["a.pth", "t.pth"], "label": [0, 1]}, "as a plain-tensor state dict"),
                              ("word", {"path": ["a.pth", "a.pth"], "label": ["cat", 1]}, "holds label 'cat'")):
        sp = tmp_path / f"{name}.json"
        sp.write_text(json.dumps({"train": train, "val": one, "test": one}))
        args = ["import", "dwsnets", sp, "--out", tmp_path / f"out-{name}", "--image-size", "8x8"]
        rc, _, err = run_cli(capsys, *args)
        assert_one_line(rc, err, args, want, progress_before=True)


def test_resuming_a_pretraining_run_with_train_names_the_right_command(tmp_path, capsys):
    from _train_helpers import overrides, tiny_store

    rc, _, err = run_cli(capsys, "pretrain", *overrides(tiny_store(tmp_path / "store"), tmp_path / "runs",
                                                        "trainer.max_steps=2"))
    assert rc == 0, err
    (run,) = (tmp_path / "runs" / "pretrain").iterdir()
    args = ["train", "--resume", run]
    rc, _, err = run_cli(capsys, *args)
    assert_one_line(rc, err, args, f"is a `ssl-ws pretrain` run: resume it with `ssl-ws pretrain --resume {run}`")


def test_a_fifo_as_the_stores_check_record_is_no_record(store, tmp_path, capsys):
    import os

    s = _copy(store, tmp_path)
    if (s / "checks.json").exists():
        (s / "checks.json").unlink()
    os.mkfifo(s / "checks.json")  # would block a plain open() forever
    rc, out, err = run_cli(capsys, "info", s)
    assert rc == 0, err  # the store is scanned instead (and its record cannot be written there)


def test_an_ids_file_that_is_a_device(index, capsys):
    args = ["query", index, "--ids-file", "/dev/zero"]
    rc, _, err = run_cli(capsys, *args)  # read until memory ran out before
    assert_one_line(rc, err, args, "is a device; expected a regular file")
