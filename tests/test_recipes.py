"""The recipes of ARCHITECTURE.md, run: a new encoder, a new SSL objective and a new evaluation, each
defined here in a few lines and used by the same code as the built-in ones.
(The augmentation recipe: tests/test_recipe_augmentation.py.)"""

import pytest
import torch
from torch import nn

from _train_helpers import cfg, tiny_store
from ssl_ws import SslWsError, load_store
from ssl_ws.eval.embed import embed_rows, split_rows
from ssl_ws.models import ENCODERS, WeightSpaceEncoder, register_encoder
from ssl_ws.models.export import load_encoder
from ssl_ws.train.objectives import OBJECTIVES, register_objective
from ssl_ws.train.callbacks import EvaluationCallback
from ssl_ws.train.runs import run_pretrain, run_train
from ssl_ws.train.two_views import TwoViewModule


# ---------------------------------------------------------------- recipe 1: an encoder
class NeuronMoments(WeightSpaceEncoder):
    """Mean and std of every layer's weights and biases over its neurons, then an MLP:
    invariant to hidden-neuron permutations (a toy StatNet)."""

    name = "toy-moments"
    description = "per-layer weight/bias moments + MLP (recipe test)"
    invariant = True

    def __init__(self, spec, hidden: int = 16, out_dim: int = 8):
        super().__init__(spec, out_dim)
        self._record(hidden=hidden, out_dim=out_dim)
        self.mlp = nn.Sequential(nn.Linear(4 * spec.n_layers, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def encode(self, ws):
        feats = []
        for w, b in zip(ws.weights, ws.biases):
            w, b = w.flatten(1), b.flatten(1)
            feats += [w.mean(1), w.std(1, unbiased=False), b.mean(1), b.std(1, unbiased=False)]
        return self.mlp(torch.stack(feats, dim=1))


# ---------------------------------------------------------------- recipe 2: an objective
class AlignUniform(TwoViewModule):
    """Alignment + uniformity of the normalized embeddings (Wang & Isola, ICML 2020)."""

    OPTIONS = {"t": 2.0}

    def pair_loss(self, v1, v2):
        z1, z2 = (torch.nn.functional.normalize(self.encode(v), dim=1) for v in (v1, v2))
        align = (z1 - z2).pow(2).sum(1).mean()
        uniform = torch.pdist(z1).pow(2).mul(-self.option("t")).exp().mean().log()
        return {"loss": align + uniform}


# ---------------------------------------------------------------- recipe 3: an evaluation
def uniformity(z):
    """Wang & Isola's uniformity of embeddings, ``log E exp(-2 ||u - v||^2)`` over pairs of normalized rows."""
    z = torch.nn.functional.normalize(torch.as_tensor(z, dtype=torch.float32), dim=1)
    return float(torch.pdist(z).pow(2).mul(-2).exp().mean().log())


class Uniformity(EvaluationCallback):
    """The uniformity of the validation embeddings at every evaluation of a run."""

    def __init__(self):
        super().__init__(every_n_epochs=1)
        self.values = []

    def evaluate(self, trainer, pl_module):
        u = uniformity(pl_module.embed_rows(trainer.datamodule.eval_rows["val"]))
        pl_module.log("val/uniformity", u)
        self.values.append(u)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("recipes") / "store")


@pytest.fixture
def registered():
    register_encoder(NeuronMoments)
    register_objective("toy-align", AlignUniform)
    yield
    ENCODERS.pop(NeuronMoments.name, None)
    OBJECTIVES.pop("toy-align", None)


def test_a_new_encoder_trains_exports_and_reloads_by_name(store, tmp_path, registered):
    res = run_train(cfg("train", store, tmp_path, "encoder.name=toy-moments", "encoder.hidden=8",
                        "augment.preset=symmetry", "trainer.max_epochs=2"))
    assert res["global_step"] > 0 and 0 <= res["test_acc"] <= 1
    pre = run_pretrain(cfg("pretrain", store, tmp_path, "encoder.name=toy-moments"))
    model = load_encoder(pre["best_checkpoint"])  # rebuilt by name from the checkpoint's config
    assert isinstance(model.encoder, NeuronMoments) and model.encoder.config == {"name": "toy-moments", "hidden": 4,
                                                                                 "out_dim": 8}
    with pytest.raises(SslWsError, match="registered already"):
        register_encoder(type("Other", (NeuronMoments,), {}))


def test_a_new_objective_pretrains_with_the_same_data_evaluation_and_checkpoints(store, tmp_path, registered):
    res = run_pretrain(cfg("pretrain", store, tmp_path, "ssl.objective=toy-align", "ssl.options.t=1",
                           "trainer.max_epochs=2"))
    assert res["config"]["ssl"]["objective"] == "toy-align" and res["config"]["ssl"]["options"] == {"t": 1}
    assert len(res["history"]) == 2 and all(0 <= r["knn_acc"] <= 1 for r in res["history"])
    assert load_encoder(res["best_checkpoint"]).out_dim == 8
    with pytest.raises(SslWsError, match="unknown ssl.objective 'mocov9'"):
        run_pretrain(cfg("pretrain", store, tmp_path / "bad", "ssl.objective=mocov9"))
    with pytest.raises(SslWsError, match=r"unknown option 'ssl.options.tau' .*'toy-align' takes \['t'\]"):
        run_pretrain(cfg("pretrain", store, tmp_path / "bad", "ssl.objective=toy-align", "ssl.options.tau=1"))
    assert not (tmp_path / "bad").exists()  # refused before a run directory was made


def test_a_new_evaluation_runs_during_training_and_on_an_exported_encoder(store, tmp_path):
    ev = Uniformity()
    res = run_pretrain(cfg("pretrain", store, tmp_path, "trainer.max_epochs=2"), callbacks=[ev])
    assert len(ev.values) == len(res["history"]) == 2 and all(-4.0 <= v <= 0.0 for v in ev.values)
    # after training: the same function of the embeddings an exported encoder gives
    st = load_store(store)
    out = embed_rows(load_encoder(res["last_checkpoint"]), st, split_rows(st, "val", res["config"]["data"]["eval_max_views"]))
    assert uniformity(out.emb) == pytest.approx(ev.values[-1], abs=1e-4)  # the last evaluation's encoder
