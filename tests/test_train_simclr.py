"""SimCLR pretraining: one epoch, resume equivalence, SIGKILL recovery, DDP global batch."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from _train_helpers import cfg, overrides, tiny_store
from ssl_ws import SslWsError
from ssl_ws.config import load_config
from ssl_ws.models.export import load_encoder
from ssl_ws.train.runs import run_pretrain


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("simclr") / "store")


class StopAfterEpochs(pl.Callback):
    def __init__(self, n):
        self.n = n

    def on_train_epoch_end(self, trainer, module):
        if trainer.current_epoch + 1 >= self.n:
            trainer.should_stop = True


def test_one_epoch_writes_run(store, tmp_path):
    res = run_pretrain(cfg("pretrain", store, tmp_path))
    run = res["run_dir"]
    assert run.startswith(str(tmp_path / "pretrain"))
    for f in ("config.yaml", "results.json", "checkpoints/last.ckpt", "checkpoints/best.ckpt"):
        assert os.path.exists(os.path.join(run, f)), f
    assert glob.glob(os.path.join(run, "events.out.tfevents.*"))
    saved = json.load(open(os.path.join(run, "results.json")))
    (rec,) = saved["history"]
    assert 0.0 <= rec["knn_acc"] <= 1.0 and 0.0 <= rec["probe_acc"] <= 1.0
    assert np.isfinite(rec["loss"]) and rec["loss"] > 0
    assert saved["global_step"] == 48 // 16  # 24 train objects x 2 views = 48 rows, batch 16 -> 3 steps
    # the saved config resolves back to the same config
    assert load_config("pretrain", os.path.join(run, "config.yaml")).encoder.hidden == 4


def test_two_views_positives_and_view_mixup(store, tmp_path):
    res = run_pretrain(cfg("pretrain", store, tmp_path, "ssl.positives=two_views", "ssl.view_mixup=true", "data.batch_size=8"))
    assert res["global_step"] == 24 // 8  # one sample per object


def test_resume_equals_uninterrupted(store, tmp_path):
    extra = ("trainer.max_epochs=2", "data.batch_size=8", "augment.preset=paper")
    straight = run_pretrain(cfg("pretrain", store, tmp_path / "a", *extra))
    first = run_pretrain(cfg("pretrain", store, tmp_path / "b", *extra), callbacks=[StopAfterEpochs(1)])
    assert first["global_step"] == 6 and len(first["history"]) == 1
    resumed = run_pretrain(load_config("pretrain", os.path.join(first["run_dir"], "config.yaml")), resume=first["run_dir"])
    assert resumed["run_dir"] == first["run_dir"] and resumed["global_step"] == straight["global_step"] == 12
    a, b = load_encoder(straight["last_checkpoint"]), load_encoder(resumed["last_checkpoint"])
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.allclose(va, vb, atol=1e-6), ka
    assert a.identity == b.identity
    assert [r["loss"] for r in straight["history"]] == pytest.approx([r["loss"] for r in resumed["history"]], rel=1e-5)


def test_sigkill_mid_epoch_loses_at_most_since_last_checkpoint(store, tmp_path):
    # a long run (many epochs) that writes last.ckpt every step; kill -9 it once a checkpoint exists
    ov = overrides(store, tmp_path, "trainer.max_epochs=200", "trainer.checkpoint_every_n_steps=1", "data.batch_size=4",
                   "encoder.name=mlp", "encoder.hidden=8")
    ov = [o for o in ov if not o.startswith(("encoder.num_heads", "encoder.head_hidden"))]
    proc = subprocess.Popen([sys.executable, "-m", "ssl_ws.cli", "pretrain", *ov],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not glob.glob(str(tmp_path / "pretrain" / "*" / "checkpoints" / "last.ckpt")):
            assert proc.poll() is None and time.time() < deadline, "training process ended before writing a checkpoint"
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    (run,) = glob.glob(str(tmp_path / "pretrain" / "*"))
    step = torch.load(os.path.join(run, "checkpoints", "last.ckpt"), weights_only=True)["global_step"]
    steps_per_epoch = 48 // 4
    assert 0 < step < 200 * steps_per_epoch
    epochs = step // steps_per_epoch + 1  # finish the epoch the kill interrupted
    seen = []

    class Count(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.append(tuple(batch["key"].tolist()))

    res = run_pretrain(load_config("pretrain", os.path.join(run, "config.yaml"), [f"trainer.max_epochs={epochs}"]),
                       resume=run, callbacks=[Count()])
    assert res["global_step"] == epochs * steps_per_epoch
    # exactly the batches after the checkpoint were run: none lost, none repeated
    assert len(seen) == epochs * steps_per_epoch - step
    assert seen[0] == (step // steps_per_epoch, step % steps_per_epoch) or step % steps_per_epoch == 0


def test_one_last_checkpoint_holds_the_last_step(store, tmp_path):
    """Step-interval and epoch-end checkpoints both write last.ckpt (no last-v1.ckpt beside it, which
    --resume would not read): it holds the final step."""
    res = run_pretrain(cfg("pretrain", store, tmp_path, "trainer.max_epochs=3", "trainer.checkpoint_every_n_steps=5",
                           "data.batch_size=8"))
    ckpts = sorted(os.listdir(os.path.join(res["run_dir"], "checkpoints")))
    assert ckpts == ["best.ckpt", "last.ckpt"], ckpts
    last = torch.load(os.path.join(res["run_dir"], "checkpoints", "last.ckpt"), weights_only=True)
    assert last["global_step"] == res["global_step"] == 3 * (48 // 8)


def test_sigterm_exits_143_and_names_the_run_to_resume(store, tmp_path):
    """A scheduler's SIGTERM (preemption) must not look like success: Lightning turns it into a
    SystemExit without a code (status 0, no results); the command exits 143 with one line that
    says how to continue, and ``--resume`` of that run then finishes it."""
    ov = overrides(store, tmp_path, "trainer.max_epochs=200", "trainer.checkpoint_every_n_steps=1", "data.batch_size=4",
                   "encoder.name=mlp", "encoder.hidden=8")
    ov = [o for o in ov if not o.startswith(("encoder.num_heads", "encoder.head_hidden"))]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("SSL_WS_RUN_DIR", None)
    proc = subprocess.Popen([sys.executable, "-m", "ssl_ws.cli", "pretrain", *ov], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not glob.glob(str(tmp_path / "pretrain" / "*" / "checkpoints" / "last.ckpt")):
            assert proc.poll() is None and time.time() < deadline, "training process ended before writing a checkpoint"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    (run,) = glob.glob(str(tmp_path / "pretrain" / "*"))
    assert proc.returncode == 143, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last == f"terminated (SIGTERM): checkpoints written so far are kept; continue from the last one with " \
                   f"`ssl-ws pretrain --resume {run}`", last
    assert not os.path.exists(os.path.join(run, "results.json"))  # stopped: no results claimed
    step = torch.load(os.path.join(run, "checkpoints", "last.ckpt"), weights_only=True)["global_step"]
    res = run_pretrain(load_config("pretrain", os.path.join(run, "config.yaml"), ["trainer.max_epochs=" + str(
        step // 12 + 1)]), resume=run)
    assert res["global_step"] == (step // 12 + 1) * 12  # 48 training rows / batch 4 = 12 steps per epoch


def test_ddp_two_processes_loss_sees_global_batch(store, tmp_path):
    from lightly.loss import NTXentLoss

    dump = tmp_path / "dump"
    dump.mkdir()
    ov = overrides(store, tmp_path, "trainer.devices=2", "trainer.strategy=ddp", "data.batch_size=8")
    env = dict(os.environ, SSL_WS_DUMP_FIRST_STEP=str(dump))
    env.pop("SSL_WS_RUN_DIR", None)
    out = subprocess.run([sys.executable, "-m", "ssl_ws.cli", "pretrain", *ov], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    (run,) = glob.glob(str(tmp_path / "pretrain" / "*"))  # both processes wrote into one run
    res = json.load(open(os.path.join(run, "results.json")))
    assert res["global_step"] == 48 // (8 * 2)  # each of the 2 ranks takes half of every global batch
    parts = [torch.load(dump / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert [p["world_size"] for p in parts] == [2, 2]
    z1 = torch.cat([p["z1"] for p in parts])
    z2 = torch.cat([p["z2"] for p in parts])
    global_loss = NTXentLoss(temperature=0.1)(z1, z2)
    mean_rank_loss = torch.stack([p["loss"] for p in parts]).mean()
    assert torch.allclose(mean_rank_loss, global_loss, atol=1e-5)
    local = torch.stack([NTXentLoss(temperature=0.1)(p["z1"], p["z2"]) for p in parts]).mean()
    assert not torch.allclose(local, global_loss, atol=1e-4)  # the test can tell local from global negatives


def test_too_small_for_batch(store, tmp_path):
    with pytest.raises(SslWsError, match="fewer than one batch"):
        run_pretrain(cfg("pretrain", store, tmp_path, "data.batch_size=64"))
    with pytest.raises(SslWsError, match="fewer than one batch"):
        run_pretrain(cfg("pretrain", store, tmp_path, "ssl.positives=two_views", "data.batch_size=32"))


def test_a_view_partner_on_a_one_fit_store_is_refused_before_the_run(tmp_path):
    """ssl.positives=auto chooses same_fit on a one-fit store: a MixUp with the object's other fit has none."""
    one_fit = tiny_store(tmp_path / "store", views=1)
    with pytest.raises(SslWsError, match="mixup_partner=view .*auto chose same_fit"):
        run_pretrain(cfg("pretrain", one_fit, tmp_path / "runs", "ssl.positives=auto", "augment.mixup=aligned",
                         "augment.mixup_partner=view"))
    assert not list((tmp_path / "runs").glob("*/*"))  # no run directory left behind
