"""Encoders declared invariant give the same embedding for hidden-neuron-permuted INRs;
the DWS layer itself is equivariant; the flat MLP is not invariant."""

import pytest
import torch

from ssl_ws import INRSpec, WeightSpace
from ssl_ws.models import ENCODERS, build_encoder
from ssl_ws.models.dws_layers import EquivariantLayer, fold_io, lift

SPECS = [(2, 8, 1), (2, 8, 3), (2, 7, 6, 1), (2, 5, 6, 4, 3)]  # 2, 3 and 4 layers, 1 or 3 outputs
SMALL = dict(
    dwsnet=dict(hidden=8, n_layers=2, num_heads=2),
    nfn=dict(hidden=8, n_layers=2, head_hidden=32),
    neural_graph=dict(hidden=16, n_layers=1, num_heads=2),
    statnet=dict(hidden=32),
    mlp=dict(hidden=32),
    **{"pixels-linear": dict(image_size=(6, 5)), "pixels-cnn": dict(image_size=(6, 5))},
)


def embed(enc, ws):
    return enc(ws, raw=ws) if enc.uses_raw_weights else enc(ws)


def random_perms(spec, batch, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.stack([torch.randperm(d, generator=g) for _ in range(batch)]) for d in spec.hidden_sizes]


def permute(ws, perms):
    """Permute the hidden neurons of each INR: perms[k-1][n] is the permutation of layer k of INR n."""
    weights, biases = list(ws.weights), list(ws.biases)
    for k, perm in enumerate(perms, start=1):
        idx = perm[:, :, None]
        weights[k - 1] = torch.gather(weights[k - 1], 1, idx.expand(-1, -1, weights[k - 1].shape[2]))
        biases[k - 1] = torch.gather(biases[k - 1], 1, perm)
        weights[k] = torch.gather(weights[k], 2, perm[:, None, :].expand(-1, weights[k].shape[1], -1))
    return WeightSpace(weights, biases, ws.spec)


def test_permute_helper_preserves_the_function(make_ws):
    from ssl_ws.inr.render import render

    spec = INRSpec((2, 7, 6, 3))
    ws = make_ws(spec, batch=3, seed=1)
    coords = torch.rand(50, 2) * 2 - 1
    moved = permute(ws, random_perms(spec, 3, 0))
    assert not torch.equal(moved.weights[1], ws.weights[1])
    torch.testing.assert_close(render(moved, coords), render(ws, coords), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("sizes", SPECS)
@pytest.mark.parametrize("name", [n for n, c in ENCODERS.items() if c.invariant])
def test_invariant_encoders_are_invariant(name, sizes, make_ws):
    torch.manual_seed(0)
    spec = INRSpec(sizes)
    enc = build_encoder(name, spec, **SMALL[name]).eval()
    ws = make_ws(spec, batch=4, seed=2, scale=10.0)
    z = embed(enc, ws)
    for seed in range(2):
        z_perm = embed(enc, permute(ws, random_perms(spec, 4, seed)))
        torch.testing.assert_close(z_perm, z, atol=1e-5, rtol=1e-4)
    # the embedding does depend on the weights (invariance is not constancy)
    assert (embed(enc, make_ws(spec, batch=4, seed=3, scale=10.0)) - z).abs().max() > 1e-3


@pytest.mark.parametrize("probe_coords", ["grid", "learned"])
def test_neural_graph_with_probes_is_invariant(probe_coords, make_ws):
    torch.manual_seed(0)
    spec = INRSpec((2, 7, 6, 3))
    enc = build_encoder("neural_graph", spec, hidden=16, n_layers=1, num_heads=2, probes=9,
                        probe_coords=probe_coords).eval()
    ws = make_ws(spec, batch=4, seed=2, scale=3.0)
    moved = permute(ws, random_perms(spec, 4, 1))
    torch.testing.assert_close(enc(moved, raw=moved), enc(ws, raw=ws), atol=1e-5, rtol=1e-4)
    # the probes carry information: the same normalized weights with other raw weights differ
    other = make_ws(spec, batch=4, seed=5, scale=3.0)
    assert (enc(ws, raw=other) - enc(ws, raw=ws)).abs().max() > 1e-4


@pytest.mark.parametrize("options", [
    dict(set_layer="deepsets", pooling="mean"),
    dict(set_layer="sab", pooling="attention", norm="layer"),
    dict(set_layer="deepsets", pooling="max", layer_pooling="sum", norm="batch", head_layers=2),
])
def test_dwsnet_options_are_invariant(options, make_ws):
    spec = INRSpec((2, 7, 6, 5, 1))
    enc = build_encoder("dwsnet", spec, hidden=8, n_layers=3, num_heads=4, **options).eval()
    ws = make_ws(spec, batch=5, seed=4, scale=10.0)
    torch.testing.assert_close(enc(permute(ws, random_perms(spec, 5, 7))), enc(ws), atol=1e-5, rtol=1e-4)


def test_mlp_baseline_is_not_invariant(make_ws):
    torch.manual_seed(0)
    spec = INRSpec((2, 8, 8, 1))
    enc = build_encoder("mlp", spec, hidden=32).eval()
    assert not enc.invariant
    ws = make_ws(spec, batch=4, seed=2, scale=10.0)
    diff = (enc(permute(ws, random_perms(spec, 4, 0))) - enc(ws)).abs().max()
    assert diff > 1e-3


def _permute_folded(x, perms, fixed_io):
    """Apply hidden-neuron permutations to channels-last (folded) layer tensors."""
    weights, biases = list(x[0]), list(x[1])
    for k, perm in enumerate(perms, start=1):
        p = perm[0]  # one permutation for the whole batch is enough here
        weights[k - 1] = weights[k - 1][:, p]
        biases[k - 1] = biases[k - 1][:, p]
        weights[k] = weights[k][:, :, p]
    return weights, biases


@pytest.mark.parametrize("fixed_io", [True, False])
@pytest.mark.parametrize("set_layer", ["deepsets", "sab"])
@pytest.mark.parametrize("sizes", [(2, 6, 3), (3, 5, 4, 6, 2)])
def test_dws_layer_is_equivariant(sizes, set_layer, fixed_io):
    torch.manual_seed(0)
    L = len(sizes) - 1
    C = 3
    weights = [torch.randn(2, sizes[j + 1], sizes[j], C) for j in range(L)]
    biases = [torch.randn(2, sizes[j + 1], C) for j in range(L)]
    x = fold_io(weights, biases) if fixed_io else (weights, biases)
    layer = EquivariantLayer(sizes, C, 4, fixed_io=fixed_io, set_layer=set_layer, num_heads=2)
    spec = INRSpec(sizes)
    perms = random_perms(spec, 1, 3)
    out_then_perm = _permute_folded(layer(x), perms, fixed_io)
    perm_then_out = layer(_permute_folded(x, perms, fixed_io))
    for a, b in zip(out_then_perm[0] + out_then_perm[1], perm_then_out[0] + perm_then_out[1]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    # shapes: channels become 4 per entry (folded axes keep their neurons as channels)
    assert out_then_perm[0][1].shape[-1] == 4 * (sizes[-1] if fixed_io and L == 2 else 1)


def test_fixed_io_layer_is_not_equivariant_to_input_permutations():
    """The input neurons are not permuted by the symmetry group; the DWS layer may use their order."""
    torch.manual_seed(0)
    sizes = (3, 5, 2)
    weights = [torch.randn(1, sizes[j + 1], sizes[j], 1) for j in range(2)]
    biases = [torch.randn(1, sizes[j + 1], 1) for j in range(2)]
    layer = EquivariantLayer(sizes, 1, 4, fixed_io=True)
    p = torch.tensor([2, 0, 1])
    w_perm = [weights[0][:, :, p], weights[1]]
    a = layer(fold_io(weights, biases))[0][0].reshape(1, 5, 3, 4)[:, :, p]
    b = layer(fold_io(w_perm, biases))[0][0].reshape(1, 5, 3, 4)
    assert (a - b).abs().max() > 1e-4


@pytest.mark.parametrize("sizes", SPECS)
@pytest.mark.parametrize("coords, embed", [("grid", 0), ("learned", 0), ("grid", 6)])
def test_dwsnet_with_probe_features_is_invariant(sizes, coords, embed, make_ws):
    """Probe activations are computed from the raw weights and move with their neurons (also
    through the per-layer probe embedding, ``probe_embed``)."""
    torch.manual_seed(0)
    spec = INRSpec(sizes)
    enc = build_encoder("dwsnet", spec, hidden=8, n_layers=2, num_heads=2, probes=9, probe_coords=coords,
                        probe_embed=embed).eval()
    ws = make_ws(spec, batch=4, seed=2)
    z = enc(ws, raw=ws)
    moved = permute(ws, random_perms(spec, 4, 0))
    torch.testing.assert_close(enc(moved, raw=moved), z, atol=1e-5, rtol=1e-4)
    # the probes carry information the normalized weights alone do not: change only the raw INRs
    other = make_ws(spec, batch=4, seed=3)
    assert (enc(ws, raw=other) - z).abs().max() > 1e-4


def test_probe_features_are_the_rendered_function(make_ws):
    from ssl_ws.inr.render import render
    from ssl_ws.models.probes import ProbeFeatures

    spec = INRSpec((2, 7, 6, 3))
    ws = make_ws(spec, batch=3, seed=1)
    probes = ProbeFeatures(spec, 16)
    feats = probes(ws)
    assert [tuple(f.shape) for f in feats] == [(3, 7, 16), (3, 6, 16), (3, 3, 16)]
    out = render(ws, probes.coords) - spec.output_offset  # [B, P, d_out]
    torch.testing.assert_close(feats[-1], out.transpose(1, 2), atol=1e-5, rtol=1e-5)


def test_probe_encoder_needs_the_raw_weights(make_ws):
    from ssl_ws.errors import SslWsError

    spec = INRSpec((2, 8, 1))
    enc = build_encoder("dwsnet", spec, hidden=8, n_layers=1, num_heads=2, probes=4)
    with pytest.raises(SslWsError, match="raw="):
        enc(make_ws(spec, batch=2, seed=0))
