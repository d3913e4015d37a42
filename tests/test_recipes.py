"""The recipes of ARCHITECTURE.md, run: a new encoder and a new SSL objective, each defined
here in a few lines, registered, and trained by the same commands as the built-in ones.
(The third recipe, a new augmentation: tests/test_recipe_augmentation.py.)"""

import pytest
import torch
from torch import nn

from _train_helpers import cfg, tiny_store
from ssl_ws import SslWsError
from ssl_ws.models import ENCODERS, WeightSpaceEncoder, register_encoder
from ssl_ws.models.export import load_encoder
from ssl_ws.train.objectives import OBJECTIVES, register_objective
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
