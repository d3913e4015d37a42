"""The built-in objectives beside SimCLR (VICReg, Barlow Twins, BYOL): each trains on the same
data and evaluation, computes lightly's loss on its step's projections, and BYOL (whose teacher
is state) resumes exactly."""

import os

import pytest
import torch

from _train_helpers import cfg, tiny_store
from test_train_simclr import StopAfterEpochs
from ssl_ws import SslWsError
from ssl_ws.config import load_config
from ssl_ws.models.export import load_encoder
from ssl_ws.train.callbacks import DUMP_ENV
from ssl_ws.train.objectives import objective_class
from ssl_ws.train.runs import run_pretrain


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("objectives") / "store")


@pytest.mark.parametrize("name,options,loss", [
    ("vicreg", ["ssl.options.nu_param=2"], lambda: __import__("lightly.loss", fromlist=["VICRegLoss"]).VICRegLoss(nu_param=2.0)),
    ("barlowtwins", [], lambda: __import__("lightly.loss", fromlist=["BarlowTwinsLoss"]).BarlowTwinsLoss()),
])
def test_decorrelation_objectives_train_with_lightlys_loss(store, tmp_path, monkeypatch, name, options, loss):
    dump = tmp_path / "dump"
    dump.mkdir()
    monkeypatch.setenv(DUMP_ENV, str(dump))
    res = run_pretrain(cfg("pretrain", store, tmp_path, f"ssl.objective={name}", *options, "trainer.max_epochs=2"))
    assert res["config"]["ssl"]["objective"] == name and len(res["history"]) == 2
    assert all(0 <= r["knn_acc"] <= 1 and torch.isfinite(torch.tensor(r["loss"])) for r in res["history"])
    first = torch.load(dump / "rank0.pt", weights_only=True)
    # the first step's loss is lightly's loss of that step's projections
    assert float(first["loss"]) == pytest.approx(float(loss()(first["z1"], first["z2"])), rel=1e-5)
    assert load_encoder(res["best_checkpoint"]).out_dim == 8


def test_byol_teacher_follows_the_encoder_and_resumes_exactly(store, tmp_path):
    extra = ("ssl.objective=byol", "ssl.options.momentum=0.9", "trainer.max_epochs=2", "data.batch_size=8")
    straight = run_pretrain(cfg("pretrain", store, tmp_path / "a", *extra))
    assert all(-1.0 <= r["loss"] <= 1.0 for r in straight["history"])  # a negative cosine
    first = run_pretrain(cfg("pretrain", store, tmp_path / "b", *extra), callbacks=[StopAfterEpochs(1)])
    resumed = run_pretrain(load_config("pretrain", os.path.join(first["run_dir"], "config.yaml")), resume=first["run_dir"])
    assert resumed["global_step"] == straight["global_step"] == 12
    a = torch.load(straight["last_checkpoint"], weights_only=False)["state_dict"]
    b = torch.load(resumed["last_checkpoint"], weights_only=False)["state_dict"]
    assert any(k.startswith("teacher_encoder.") for k in a)
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
    # the teacher moved (EMA of the encoder), but is not the encoder
    enc = {k[len("encoder."):]: v for k, v in a.items() if k.startswith("encoder.")}
    teach = {k[len("teacher_encoder."):]: v for k, v in a.items() if k.startswith("teacher_encoder.")}
    assert enc.keys() == teach.keys()
    assert any(not torch.equal(enc[k], teach[k]) for k in enc if enc[k].is_floating_point())


def test_objective_options_are_checked_before_a_run_directory_exists(store, tmp_path):
    with pytest.raises(SslWsError, match="unknown option 'ssl.options.momentun'.*did you mean 'ssl.options.momentum'"):
        run_pretrain(cfg("pretrain", store, tmp_path / "bad", "ssl.objective=byol", "ssl.options.momentun=0.9"))
    with pytest.raises(SslWsError, match="ssl.options.lambda_param must be a finite non-negative number"):
        run_pretrain(cfg("pretrain", store, tmp_path / "bad", "ssl.objective=vicreg", "ssl.options.lambda_param=abc"))
    with pytest.raises(SslWsError, match="ssl.options.momentum must be at most 1.0"):
        run_pretrain(cfg("pretrain", store, tmp_path / "bad", "ssl.objective=byol", "ssl.options.momentum=5"))
    with pytest.raises(SslWsError, match="'simclr' takes no options"):
        run_pretrain(cfg("pretrain", store, tmp_path / "bad", "ssl.options.lambda_param=1"))
    assert not (tmp_path / "bad").exists()
    assert set(objective_class("byol").OPTIONS) == {"momentum"}
