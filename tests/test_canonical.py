"""Canonical forms under the neuron-wise sign / bias-shift (SIREN) and positive-scale (ReLU)
symmetries: same function, one representative per orbit, commuting with permutations; a
canonical DWSNet is invariant to all of them exactly."""

import math

import pytest
import torch

from ssl_ws import INRSpec
from ssl_ws.augment.functional import bias_shift, sign_flip
from ssl_ws.models.canonical import canonicalize
from ssl_ws.inr.render import render
from ssl_ws.models import build_encoder

from test_models_invariance import permute, random_perms

SINE = INRSpec((2, 7, 6, 3))
RELU = INRSpec((2, 7, 6, 3), activation="relu")


def random_orbit(ws, seed):
    """A random element of the neuron-wise symmetry orbit of every INR of ``ws``."""
    g = torch.Generator().manual_seed(seed)
    hidden = ws.spec.layer_sizes[1:-1]
    if ws.spec.activation == "sine":
        signs = [torch.randint(0, 2, (len(ws), h), generator=g).float() * 2 - 1 for h in hidden]
        ks = [torch.randint(-3, 4, (len(ws), h), generator=g) for h in hidden]
        return sign_flip(bias_shift(ws, ks), signs)
    weights, biases = list(ws.weights), list(ws.biases)
    for i, h in enumerate(hidden):
        c = torch.rand(len(ws), h, generator=g) * 4 + 0.1
        weights[i], biases[i] = weights[i] * c.unsqueeze(-1), biases[i] * c
        weights[i + 1] = weights[i + 1] / c.unsqueeze(1)
    return ws.replace(weights=weights, biases=biases)


@pytest.mark.parametrize("spec", [SINE, RELU], ids=["sine", "relu"])
def test_canonical_form_keeps_the_function_and_is_one_per_orbit(spec, make_ws):
    ws = make_ws(spec, batch=5, seed=0, scale=3.0).to(dtype=torch.float64)
    coords = torch.rand(64, 2, dtype=torch.float64) * 2 - 1
    canon = canonicalize(ws)
    torch.testing.assert_close(render(canon, coords), render(ws, coords))
    for seed in range(3):
        moved = random_orbit(ws, seed)
        assert (moved.to_flat() - ws.to_flat()).abs().max() > 1e-2  # a real move
        torch.testing.assert_close(canonicalize(moved).to_flat(), canon.to_flat())
    if spec.activation == "sine":  # biases land in [0, pi / (2 w0)]
        for b in canon.biases[:-1]:
            assert b.min() >= 0 and b.max() <= math.pi / (2 * spec.w0) + 1e-12
    # permutations commute with it (each neuron's form depends on that neuron only)
    perms = random_perms(spec, 5, 1)
    torch.testing.assert_close(canonicalize(permute(ws, perms)).to_flat(), permute(canon, perms).to_flat())


@pytest.mark.parametrize("name", ["dwsnet", "neural_graph"])
def test_canonical_encoders_are_invariant_to_signs_shifts_and_permutations(name, make_ws):
    torch.manual_seed(0)
    ws = make_ws(SINE, batch=4, seed=2, scale=3.0)
    moved = permute(random_orbit(ws, 5), random_perms(SINE, 4, 2))
    plain = build_encoder(name, SINE, hidden=8, n_layers=2, num_heads=2).eval()
    canon = build_encoder(name, SINE, hidden=8, n_layers=2, num_heads=2, canonical=True).eval()
    canon.load_state_dict(plain.state_dict())
    from ssl_ws.models.base import encode_weights
    from ssl_ws.models.normalize import WeightNormalizer

    norm = WeightNormalizer.identity(SINE)
    torch.testing.assert_close(encode_weights(canon, norm, moved), encode_weights(canon, norm, ws), atol=1e-5, rtol=1e-4)
    # without it, sign flips and bias shifts change the embedding
    assert (encode_weights(plain, norm, moved) - encode_weights(plain, norm, ws)).abs().max() > 1e-3


def test_trained_canonical_encoder_keeps_its_invariance_after_export(tmp_path):
    from _train_helpers import cfg, tiny_store
    from ssl_ws.data import load_store
    from ssl_ws.models.export import load_encoder
    from ssl_ws.train.runs import run_train

    path = tiny_store(tmp_path / "st", n_obj=20, views=1)
    res = run_train(cfg("train", path, tmp_path, "encoder.canonical=true", "augment.preset=none", "data.batch_size=4",
                        "supervised.mixup=none", "trainer.max_steps=2"))
    model = load_encoder(res["best_checkpoint"])
    assert model.encoder.canonical and model.encoder_config["canonical"] is True
    ws = load_store(path).weights(range(6))
    torch.testing.assert_close(model(random_orbit(ws, 0)), model(ws), atol=1e-5, rtol=1e-4)
