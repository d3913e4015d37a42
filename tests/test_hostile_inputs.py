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
    ("supervised.mixup_alpha=0", "supervised.mixup_alpha must be positive"),
]


@pytest.mark.parametrize("value,want", PRETRAIN_VALUES)
def test_pretrain_refuses_bad_values_before_a_run_exists(store, tmp_path, capsys, value, want):
    out = tmp_path / "runs"
    args = ["pretrain", f"data.store={store}", f"output_dir={out}", value]
    rc, _, err = run_cli(capsys, *args)
    assert_one_line(rc, err, args, want)
    assert not out.exists()


@pytest.mark.parametrize("value,want", TRAIN_VALUES)
def test_train_refuses_bad_values_before_a_run_exists(store, tmp_path, capsys, value, want):
    out = tmp_path / "runs"
    args = ["train", f"data.store={store}", f"output_dir={out}", value]
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
