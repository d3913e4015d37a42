import pytest
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ssl_ws import INRSpec, SslWsError, WeightNormalizer, WeightSpace, render, render_image
from ssl_ws.inr.render import image_coordinates


class Sine(nn.Module):
    def __init__(self, w0):
        super().__init__()
        self.w0 = w0

    def forward(self, x):
        return torch.sin(self.w0 * x)


def reference_module(spec, linear_layers):
    mods = []
    for i, lin in enumerate(linear_layers):
        mods.append(lin)
        if i < len(linear_layers) - 1:
            mods.append(Sine(spec.w0) if spec.activation == "sine" else nn.ReLU())
    return nn.Sequential(*mods)


@pytest.mark.parametrize("sizes", [(2, 32, 32, 1), (2, 16, 3), (3, 8, 8, 8, 2)])
def test_flat_round_trip_matches_parameters_to_vector(sizes):
    spec = INRSpec(sizes)
    modules = [spec.build_module() for _ in range(3)]
    flat = torch.stack([parameters_to_vector(m.parameters()) for m in modules])
    ws = WeightSpace.from_flat(flat, spec)
    assert torch.equal(ws.to_flat(), flat)
    for k, m in enumerate(modules):
        assert torch.equal(ws.weights[0][k], m[0].weight)
        assert torch.equal(ws.biases[-1][k], m[-1].bias)
        # and back into a plain module with vector_to_parameters
        fresh = spec.build_module()
        vector_to_parameters(ws.to_flat()[k], fresh.parameters())
        for a, b in zip(fresh.parameters(), m.parameters()):
            assert torch.equal(a, b)


def test_state_dict_round_trip_both_key_layouts(spec, make_ws):
    ws = make_ws(spec, batch=3)
    for prefix in ("seq.", ""):
        sds = [ws.to_state_dict(i, prefix=prefix) for i in range(3)]
        back = WeightSpace.from_state_dicts(sds, spec)
        assert torch.equal(back.to_flat(), ws.to_flat())
    # sizes are inferred when no spec is given
    inferred = WeightSpace.from_state_dicts([ws.to_state_dict(0)], w0=30.0, output_offset=0.5)
    assert inferred.spec == spec


def test_state_dict_with_activation_modules_in_sequential(spec, make_ws):
    ws = make_ws(spec, batch=1)
    ref = reference_module(spec, [nn.Linear(i, o) for o, i in spec.weight_shapes])
    ref.load_state_dict({f"{2*i}.{k}": v for i, (w, b) in enumerate(zip(ws.weights, ws.biases)) for k, v in (("weight", w[0]), ("bias", b[0]))})
    back = WeightSpace.from_state_dicts([ref.state_dict()], spec)
    assert torch.equal(back.to_flat(), ws.to_flat())


def test_state_dict_architecture_mismatch_is_a_clear_error(spec, make_ws):
    a = make_ws(spec, batch=1).to_state_dict(0)
    b = make_ws(INRSpec((2, 16, 16, 1)), batch=1).to_state_dict(0)
    with pytest.raises(SslWsError, match="layer sizes"):
        WeightSpace.from_state_dicts([a, b], spec)
    with pytest.raises(SslWsError, match="not a tensor"):
        WeightSpace.from_state_dicts([{"seq.0.weight": [1, 2], "seq.0.bias": torch.zeros(1)}])


def test_bad_flat_shape_is_a_clear_error(spec):
    with pytest.raises(SslWsError, match=r"\[B, 1185\]"):
        WeightSpace.from_flat(torch.zeros(2, 100), spec)


@pytest.mark.parametrize("activation", ["sine", "relu"])
@pytest.mark.parametrize("sizes", [(2, 32, 32, 1), (2, 16, 16, 16, 3)])
def test_render_equals_module_forward(sizes, activation, make_ws):
    spec = INRSpec(sizes, activation=activation, w0=30.0, output_offset=0.5)
    ws = make_ws(spec, batch=5)
    coords = torch.rand(100, 2) * 2 - 1
    out = render(ws, coords)
    assert out.shape == (5, 100, spec.out_dim)
    for k in range(5):
        linears = [nn.Linear(i, o) for o, i in spec.weight_shapes]
        for lin, w, b in zip(linears, ws.weights, ws.biases):
            lin.weight.data, lin.bias.data = w[k].clone(), b[k].clone()
        ref = reference_module(spec, linears)(coords) + 0.5
        torch.testing.assert_close(out[k], ref, rtol=1e-5, atol=1e-5)


def test_render_image_layout(spec, make_ws):
    ws = make_ws(spec, batch=2)
    img = render_image(ws, 7, 5)
    assert img.shape == (2, 1, 7, 5)
    coords = image_coordinates(7, 5)
    flat = render(ws, coords)  # [B, 35, 1]
    torch.testing.assert_close(img[:, 0], flat[..., 0].reshape(2, 7, 5))
    # x grows along columns, y along rows
    grid = coords.reshape(7, 5, 2)
    assert torch.all(grid[0, 1:, 0] > grid[0, :-1, 0]) and torch.all(grid[1:, 0, 1] > grid[:-1, 0, 1])


def test_indexing_cat_and_device(spec, make_ws):
    ws = make_ws(spec, batch=6)
    assert len(ws[2]) == 1 and len(ws[1:4]) == 3
    idx = torch.tensor([5, 0, 3])
    assert torch.equal(ws[idx].to_flat(), ws.to_flat()[idx])
    assert torch.equal(WeightSpace.cat([ws[:2], ws[2:]]).to_flat(), ws.to_flat())
    assert ws.to("cpu", torch.float64).dtype == torch.float64
    with pytest.raises(SslWsError):
        WeightSpace.cat([ws, make_ws(INRSpec((2, 8, 1)), batch=1)])


def test_normalizer_commutes_with_hidden_permutations(spec, make_ws):
    ws = make_ws(spec, batch=16)
    norm = WeightNormalizer.fit(ws, spec)
    z = norm(ws)
    # standardized: zero mean and unit std over each tied group
    assert abs(float(z.weights[1].mean())) < 1e-4 and abs(float(z.weights[1].std()) - 1) < 1e-2
    perm = torch.randperm(32)
    def permute_first_hidden(w):
        ww = list(w.weights); bb = list(w.biases)
        ww[0] = ww[0][:, perm]; bb[0] = bb[0][:, perm]; ww[1] = ww[1][:, :, perm]
        return w.replace(ww, bb)
    torch.testing.assert_close(norm(permute_first_hidden(ws)).to_flat(), permute_first_hidden(z).to_flat())
    torch.testing.assert_close(norm.denormalize(z).to_flat(), ws.to_flat(), rtol=1e-5, atol=1e-6)
    again = WeightNormalizer.from_dict(norm.to_dict())
    torch.testing.assert_close(again(ws).to_flat(), z.to_flat())


def test_normalizer_is_a_module_that_moves_with_its_holder(spec, make_ws):
    ws = make_ws(spec, batch=8)
    norm = WeightNormalizer.fit(ws, spec)
    holder = torch.nn.Module()
    holder.norm = norm
    assert {n for n, _ in holder.named_buffers()} >= {"norm.w_mean_0", "norm.b_std_1"}
    assert holder.state_dict() == {}  # not persistent: checkpoints carry the portable to_dict()
    holder.double()  # buffers follow the holder (as they follow .to(device))
    assert norm.w_std[0].dtype == torch.float64
    assert all(t.dtype == torch.float32 and t.device.type == "cpu" for t in norm.to_dict()["w_std"])
    z = norm(ws)  # a float32 batch on a float64 normalizer: cast per call, same values
    torch.testing.assert_close(z.to_flat(), WeightNormalizer.from_dict(norm.to_dict())(ws).to_flat())
    with pytest.raises(ValueError):
        WeightNormalizer(spec, norm.w_mean[:1], norm.w_std, norm.b_mean, norm.b_std)
