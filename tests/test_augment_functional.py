"""Exactness of the weight-space augmentation kernels: render before and after."""

import math

import pytest
import torch

from ssl_ws import INRSpec, SslWsError, WeightSpace, image_coordinates, render, render_image
from ssl_ws.augment import functional as F

from conftest import random_ws

SPECS = [
    INRSpec((2, 32, 32, 1)),
    INRSpec((2, 16, 1)),  # 2 layers
    INRSpec((2, 16, 24, 16, 3)),  # 4 layers, 3 output channels
]
SPEC_IDS = ["2-32-32-1", "2-16-1", "2-16-24-16-3"]
TOL = 1e-4


def _perms(spec, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.argsort(torch.rand(batch, h, generator=g), dim=1) for h in spec.hidden_sizes]


def _signs(spec, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.where(torch.rand(batch, h, generator=g) < 0.5, -1.0, 1.0) for h in spec.hidden_sizes]


def _ks(spec, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(-4, 5, (batch, h), generator=g) for h in spec.hidden_sizes]


def _img(ws):
    return render_image(ws, 28, 28)


@pytest.fixture(scope="module")
def fitted():
    """Four real SIRENs fitted to sklearn digits (on a 14x14 grid, 100 Adam steps: about a second)."""
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    spec = INRSpec((2, 32, 32, 1))
    digits = torch.tensor(load_digits().images[:4], dtype=torch.float32) / 16.0
    target = torch.nn.functional.interpolate(digits[:, None], size=(14, 14), mode="bilinear", align_corners=True)
    target = target.flatten(2).transpose(1, 2)  # [B, N, 1]
    params = []
    for i, ((o, d), _) in enumerate(zip(spec.weight_shapes, spec.bias_shapes)):
        bound = math.sqrt(6 / d) / 30 if i < spec.n_layers - 1 else 1 / math.sqrt(d)
        bound = 1 / d if i == 0 else bound
        params.append(((torch.rand(4, o, d) * 2 - 1) * bound).requires_grad_())
        params.append(torch.zeros(4, o).requires_grad_())
    opt = torch.optim.Adam(params, lr=2e-3)
    coords = image_coordinates(14, 14)
    for _ in range(100):
        ws = WeightSpace(params[0::2], params[1::2], spec)
        loss = ((render(ws, coords) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    ws = WeightSpace([p.detach() for p in params[0::2]], [p.detach() for p in params[1::2]], spec)
    psnr = -10 * torch.log10(((render(ws, coords) - target) ** 2).mean())
    assert psnr > 18, f"test fixture fit too poorly ({psnr:.1f} dB)"
    return ws


# ---------------------------------------------------------------- exact symmetries
@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_symmetries_leave_render_unchanged(spec):
    ws = random_ws(spec, batch=5, seed=1)
    before = _img(ws)
    for name, out in [
        ("permute", F.permute(ws, _perms(spec, 5))),
        ("sign_flip", F.sign_flip(ws, _signs(spec, 5))),
        ("bias_shift", F.bias_shift(ws, _ks(spec, 5))),
    ]:
        assert (out.to_flat() - ws.to_flat()).abs().max() > 1e-3, f"{name} did not change the weights"
        assert (_img(out) - before).abs().max() < TOL, name


def test_symmetries_on_fitted_inrs(fitted):
    before = _img(fitted)
    spec = fitted.spec
    out = F.bias_shift(F.sign_flip(F.permute(fitted, _perms(spec, 4)), _signs(spec, 4)), _ks(spec, 4))
    assert (_img(out) - before).abs().max() < TOL


def test_bias_shift_needs_outgoing_sign():
    """The test above can fail: an odd shift without the outgoing sign flip changes the image."""
    spec = SPECS[0]
    ws = random_ws(spec, batch=2)
    ones = [torch.ones(2, h, dtype=torch.long) for h in spec.hidden_sizes]
    biased = ws.replace(biases=[b + math.pi / spec.w0 for b in ws.biases[:-1]] + [ws.biases[-1]])
    assert (_img(biased) - _img(ws)).abs().max() > 1e-2
    assert (_img(F.bias_shift(ws, ones)) - _img(ws)).abs().max() < TOL


def test_odd_symmetries_refused_for_relu():
    spec = INRSpec((2, 16, 16, 1), activation="relu")
    ws = random_ws(spec, batch=2)
    with pytest.raises(SslWsError, match="sine"):
        F.sign_flip(ws, _signs(spec, 2))
    with pytest.raises(SslWsError, match="sine"):
        F.bias_shift(ws, _ks(spec, 2))
    # permutations are a symmetry of every elementwise activation
    assert (_img(F.permute(ws, _perms(spec, 2))) - _img(ws)).abs().max() < TOL


def test_bad_symmetry_arguments():
    spec = SPECS[0]
    ws = random_ws(spec, batch=2)
    with pytest.raises(SslWsError):
        F.permute(ws, _perms(spec, 2)[:1])
    with pytest.raises(SslWsError):
        F.permute(ws, [torch.zeros(3, 32, dtype=torch.long)] * 2)
    with pytest.raises(SslWsError):
        F.sign_flip(ws, [torch.full((2, 32), 2.0)] * 2)


# ---------------------------------------------------------------------------- warps
def _coords(ws):
    return image_coordinates(28, 28).expand(len(ws), -1, -1)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_translate_equals_render_at_shifted_coords(spec):
    ws = random_ws(spec, batch=4, seed=2)
    t = torch.tensor([[0.1, -0.2], [0.0, 0.3], [-0.25, 0.25], [0.5, 0.0]])
    x = _coords(ws)
    assert (render(F.translate(ws, t), x) - render(ws, x - t[:, None])).abs().max() < TOL


def test_translate_moves_image_content_by_plus_t(fitted):
    step = 2.0 / 27  # one pixel
    t = torch.tensor([[2 * step, 0.0], [0.0, 3 * step], [-step, step], [0.0, 0.0]])
    img, moved = _img(fitted), _img(F.translate(fitted, t))
    assert (moved[0, :, :, 2:] - img[0, :, :, :-2]).abs().max() < TOL  # right by 2 pixels
    assert (moved[1, :, 3:, :] - img[1, :, :-3, :]).abs().max() < TOL  # down by 3 pixels
    assert (moved[2, :, 1:, :-1] - img[2, :, :-1, 1:]).abs().max() < TOL  # left 1, down 1
    assert (moved[0] - img[0]).abs().max() > 1e-2


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_rotate_equals_render_at_rotated_coords(spec):
    ws = random_ws(spec, batch=3, seed=3)
    angle = torch.tensor([0.3, -1.0, math.pi / 2])
    x = _coords(ws)
    r_inv = F.rotation_matrix(-angle)  # g(x) = f(R(-theta) x)
    expected = render(ws, x @ r_inv.transpose(1, 2))
    assert (render(F.rotate(ws, angle), x) - expected).abs().max() < TOL
    # a quarter turn maps the pixel grid onto itself: positive angles turn clockwise on screen
    img, rot = _img(ws[2]), _img(F.rotate(ws[2], angle[2:]))
    assert (rot - torch.rot90(img, k=-1, dims=(2, 3))).abs().max() < TOL


def test_scale_and_flip_and_affine(fitted):
    ws = fitted
    x = _coords(ws)
    s = torch.tensor([0.8, 1.2, 1.0, 2.0])
    assert (render(F.scale(ws, s), x) - render(ws, x / s[:, None, None])).abs().max() < TOL
    s2 = torch.tensor([[0.8, 1.1], [1.2, 0.9], [1.0, 1.0], [0.5, 2.0]])
    assert (render(F.scale(ws, s2), x) - render(ws, x / s2[:, None])).abs().max() < TOL
    img = _img(ws)
    assert (_img(F.flip(ws, "x")) - img.flip(-1)).abs().max() < TOL
    assert (_img(F.flip(ws, "y")) - img.flip(-2)).abs().max() < TOL
    mask = torch.tensor([[True, False], [False, True], [True, True], [False, False]])
    assert (render(F.flip(ws, mask), x) - render(ws, x * (1 - 2 * mask.float())[:, None])).abs().max() < TOL
    g = torch.Generator().manual_seed(0)
    a = torch.eye(2) + 0.3 * torch.randn(4, 2, 2, generator=g)
    t = 0.2 * torch.randn(4, 2, generator=g)
    expected = render(ws, (x - t[:, None]) @ torch.linalg.inv(a).transpose(1, 2))
    assert (render(F.affine(ws, a, t), x) - expected).abs().max() < TOL
    with pytest.raises(SslWsError):
        F.scale(ws, torch.zeros(4))
    with pytest.raises(SslWsError):
        F.flip(ws, "z")


def test_warps_check_dimensions():
    ws3 = random_ws(INRSpec((3, 16, 1)), batch=2)
    with pytest.raises(SslWsError, match="2-D"):
        F.rotate(ws3, torch.zeros(2))
    x = torch.rand(2, 50, 3) * 2 - 1
    t = torch.tensor([[0.1, 0.2, 0.3], [-0.1, 0.0, 0.2]])
    assert (render(F.translate(ws3, t), x) - render(ws3, x - t[:, None])).abs().max() < TOL
    with pytest.raises(SslWsError):
        F.translate(ws3, torch.zeros(2, 2))
    with pytest.raises(SslWsError):
        F.translate(ws3, torch.zeros(5, 3))


@pytest.mark.parametrize("spec", [INRSpec((2, 16, 16, 1), output_offset=0.5), INRSpec((2, 16, 3), output_offset=0.0)])
def test_intensity_respects_output_offset(spec):
    ws = random_ws(spec, batch=3, seed=4)
    s, c = torch.tensor([0.5, 1.5, -1.0]), torch.tensor([0.1, -0.2, 0.0])
    x = _coords(ws)
    expected = s[:, None, None] * render(ws, x) + c[:, None, None]
    assert (render(F.intensity(ws, s, c), x) - expected).abs().max() < TOL
    if spec.out_dim == 3:  # per-channel
        sc = torch.rand(3, 3) + 0.5
        expected = sc[:, None] * render(ws, x)
        assert (render(F.intensity(ws, sc, 0.0), x) - expected).abs().max() < TOL


# ---------------------------------------------------------------- data-agnostic
def _noise(ws, seed=0):
    """``eps ~ N(0, 1)`` per tensor, in the flat parameter order ``[W_0, b_0, W_1, ...]``."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(t.shape, generator=g) for pair in zip(ws.weights, ws.biases) for t in pair]


def test_gaussian_noise_is_relative_to_each_tensors_std():
    spec = SPECS[0]
    ws = random_ws(spec, batch=64)
    sigma = torch.full((64,), 0.3)
    sigma[:32] = 0.0
    noise = _noise(ws)
    out = F.gaussian_noise(ws, sigma, noise)
    for a, b in zip(out.weights + out.biases, ws.weights + ws.biases):
        assert torch.equal(a[:32], b[:32])
    for i in range(spec.n_layers):
        diff = (out.weights[i] - ws.weights[i])[32:]
        std = ws.weights[i][32:].flatten(1).std(dim=1, correction=0)
        ratio = diff.flatten(1).std(dim=1) / std
        assert abs(ratio.mean().item() - 0.3) < 0.03
        # exactly theta + sigma * std * eps
        expected = ws.weights[i][32:] + 0.3 * std[:, None, None] * noise[2 * i][32:]
        assert torch.allclose(out.weights[i][32:], expected, atol=1e-6)
    again = F.gaussian_noise(ws, sigma, noise)  # a kernel draws nothing
    assert torch.equal(again.to_flat(), out.to_flat())
    with pytest.raises(SslWsError, match="noise"):
        F.gaussian_noise(ws, sigma, noise[:-1])
    with pytest.raises(SslWsError, match="shapes"):
        F.gaussian_noise(ws, sigma, noise[1:] + noise[:1])


def test_dropout_zeros_the_mask_and_rescales():
    ws = random_ws(SPECS[0], batch=40)
    p = torch.linspace(0.0, 0.5, 40)
    keep = torch.rand(40, SPECS[0].n_params, generator=torch.Generator().manual_seed(0)) >= p[:, None]
    out = F.dropout(ws, p, keep)
    a, b = out.to_flat(), ws.to_flat()
    assert bool((a[~keep] == 0).all())
    assert torch.allclose(a[keep], (b / (1 - p[:, None]))[keep], rtol=1e-5, atol=0)
    plain = F.dropout(ws, p, keep, rescale=False).to_flat()
    assert torch.equal(plain, torch.where(keep, b, torch.zeros_like(b)))
    with pytest.raises(SslWsError):
        F.dropout(ws, 1.0, keep)
    with pytest.raises(SslWsError, match="keep"):
        F.dropout(ws, p, keep.float())


def test_quantile_dropout_zeros_the_smallest():
    ws = random_ws(SPECS[0], batch=3)
    q = torch.tensor([0.0, 0.1, 0.5])
    out = F.quantile_dropout(ws, q).to_flat()
    flat = ws.to_flat()
    n = flat.shape[1]
    for i in range(3):
        k = int(math.floor(q[i].item() * n))
        zeroed = out[i] == 0
        assert int(zeroed.sum()) == k
        if k:
            assert flat[i][zeroed].abs().max() <= flat[i][~zeroed].abs().min()
        assert torch.equal(out[i][~zeroed], flat[i][~zeroed])


def test_kernels_broadcast_numbers_and_reject_bad_batch():
    ws = random_ws(SPECS[0], batch=3)
    assert torch.equal(F.rotate(ws, 0.0).to_flat(), ws.to_flat())
    assert (F.mixup(ws, ws, 0.3).to_flat() - ws.to_flat()).abs().max() < 1e-6
    with pytest.raises(SslWsError):
        F.rotate(ws, torch.zeros(5))
    with pytest.raises(SslWsError):
        F.mixup(ws, ws[:2], torch.zeros(3))


# ---------------------------------------------------------------- alignment + mixup
@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_align_recovers_a_permutation_of_itself(spec):
    ws = random_ws(spec, batch=6, seed=5)
    permuted = F.permute(ws, _perms(spec, 6, seed=9))
    aligned, perms = F.align(ws, permuted, return_perms=True)
    assert torch.equal(aligned.to_flat(), ws.to_flat())
    for p, h in zip(perms, spec.hidden_sizes):
        assert torch.equal(p.sort(dim=1).values, torch.arange(h).expand(6, h))
    lam = torch.rand(6)
    assert (F.mixup(ws, aligned, lam).to_flat() - ws.to_flat()).abs().max() < 1e-6


def test_align_recovers_fitted_inrs_and_aligned_mixup_returns_them(fitted):
    spec = fitted.spec
    permuted = F.sign_flip(F.permute(fitted, _perms(spec, 4, seed=3)), [torch.ones(4, h) for h in spec.hidden_sizes])
    aligned = F.align(fitted, permuted)
    mixed = F.mixup(fitted, aligned, torch.tensor([0.1, 0.5, 0.7, 0.0]))
    assert (mixed.to_flat() - fitted.to_flat()).abs().max() < 1e-6
    assert (_img(mixed) - _img(fitted)).abs().max() < TOL


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_weight_matching_never_increases_distance(spec):
    a, b = random_ws(spec, batch=16, seed=6), random_ws(spec, batch=16, seed=7)
    aligned = F.align(a, b)
    before = (a.to_flat() - b.to_flat()).norm(dim=1)
    after = (a.to_flat() - aligned.to_flat()).norm(dim=1)
    assert bool((after <= before * (1 + 1e-6)).all())
    assert bool((after < before - 1e-3).any())
    # the aligned partner is the same function as the partner
    assert (_img(aligned) - _img(b)).abs().max() < TOL


def test_align_rejects_mismatched_batches():
    a = random_ws(SPECS[0], batch=2)
    with pytest.raises(SslWsError):
        F.align(a, random_ws(SPECS[0], batch=3))
    with pytest.raises(SslWsError):
        F.align(a, random_ws(SPECS[1], batch=2))
