import math

import numpy as np
import pytest
import torch

from ssl_ws import INRSpec, SslWsError, WeightSpace, render, render_image
from ssl_ws.inr.fit import (
    fit_inrs,
    fit_like_store,
    init_weights,
    inr_keys,
    keyed_uniform,
    retry_key,
    siren_loss_and_grad,
)
from ssl_ws.inr.render import image_coordinates


def digits(n=16):
    from sklearn.datasets import load_digits

    return torch.tensor(load_digits().images[:n] / 16.0, dtype=torch.float32).unsqueeze(1)


@pytest.mark.parametrize("sizes", [(2, 32, 32, 1), (2, 8, 6, 5, 3)])
def test_gradient_matches_autograd(sizes):
    spec = INRSpec(sizes)
    h, w = 5, 7  # non-square: a row/column mix-up would show
    keys = inr_keys(3, torch.arange(4), torch.zeros(4, dtype=torch.int64))
    flat = init_weights(spec, "siren", keys).to_flat().double()
    flat = flat + 0.01 * torch.randn_like(flat, generator=torch.Generator().manual_seed(0))
    target = torch.rand(4, h * w, spec.out_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    mse, grad = siren_loss_and_grad(flat.clone(), spec, target, h, w)

    leaf = flat.clone().requires_grad_(True)
    out = render(WeightSpace.from_flat(leaf, spec), image_coordinates(h, w, dtype=torch.float64))
    ref = ((out - target) ** 2).mean(dim=(1, 2))
    ref.sum().backward()
    torch.testing.assert_close(mse, ref.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad, leaf.grad, rtol=1e-8, atol=1e-10)


def test_fit_reaches_target_on_real_digits_and_reports_true_psnr():
    imgs = digits(16)
    res = fit_inrs(imgs, recipe="siren", steps=600)
    assert not res.failed.any()
    assert float(res.psnr.median()) >= 40.0
    # the reported PSNR is the PSNR of the returned weights
    rendered = render_image(res.ws, 8, 8)
    psnr = -10 * torch.log10(((rendered - imgs) ** 2).mean(dim=(1, 2, 3)))
    torch.testing.assert_close(psnr, res.psnr, atol=1e-3, rtol=0)
    reached = res.psnr >= 40.0
    assert (res.steps[reached] < 600).all()


def test_early_stopped_inr_stops_changing():
    imgs = digits(6)
    a = fit_inrs(imgs, steps=150)
    b = fit_inrs(imgs, steps=400)
    stopped = a.psnr >= 40.0
    assert stopped.any()
    torch.testing.assert_close(a.ws.to_flat()[stopped], b.ws.to_flat()[stopped], rtol=0, atol=0)
    assert (b.steps[stopped] == a.steps[stopped]).all()


def test_views_depend_only_on_seed_image_view():
    spec = INRSpec()
    keys = inr_keys(7, torch.tensor([0, 0, 1, 5]), torch.tensor([0, 1, 0, 3]))
    full = init_weights(spec, "siren", keys).to_flat()
    sub = init_weights(spec, "siren", keys[2:]).to_flat()
    torch.testing.assert_close(full[2:], sub, rtol=0, atol=0)
    assert len({tuple(r.tolist()) for r in full}) == 4  # all different
    assert not torch.equal(full, init_weights(spec, "siren", inr_keys(8, torch.tensor([0, 0, 1, 5]), torch.tensor([0, 1, 0, 3]))).to_flat())
    # keys are injective over a large grid of (image, view)
    k = inr_keys(0, torch.arange(5000).repeat_interleave(20), torch.arange(20).repeat(5000))
    assert len(torch.unique(k)) == k.numel()
    u = keyed_uniform(k[:2000], 50)
    assert 0.0 < float(u.min()) and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.01


def test_recipes_init_bounds():
    spec = INRSpec()
    keys = inr_keys(0, torch.arange(64), torch.zeros(64, dtype=torch.int64))
    dws, sir = init_weights(spec, "dwsnets", keys), init_weights(spec, "siren", keys)
    assert float(dws.weights[0].abs().max()) <= math.sqrt(6 / 2) / 30
    assert float(sir.weights[0].abs().max()) <= 0.5 and float(sir.weights[0].abs().max()) > 0.45
    assert float(dws.weights[1].abs().max()) <= math.sqrt(6 / 32) / 30
    assert float(dws.biases[0].abs().max()) == 0.0
    assert float(dws.weights[2].abs().max()) <= 1 / math.sqrt(32)
    with pytest.raises(SslWsError):
        init_weights(spec, "nope", keys)


def test_nan_is_retried_then_marked_never_returned():
    imgs = digits(3)
    imgs[1, 0, 2, 2] = float("nan")  # this INR can never have a finite loss
    res = fit_inrs(imgs, steps=20, max_retries=2)
    assert res.failed.tolist() == [False, True, False]
    assert res.retries.tolist() == [0, 2, 0]
    assert torch.isnan(res.psnr[1]) and torch.isfinite(res.psnr[[0, 2]]).all()
    assert torch.isfinite(res.ws.to_flat()).all()
    # the retry key is new, and the first attempt uses the key itself
    k = inr_keys(0, torch.tensor([1]), torch.tensor([0]))
    assert torch.equal(retry_key(k, torch.tensor([0])), k) and not torch.equal(retry_key(k, torch.tensor([1])), k)


def test_fit_like_store_resizes_and_uses_store_recipe():
    spec = INRSpec()
    meta = {"spec": spec.to_dict(), "image_size": [8, 8],
            "fit": {"recipe": "siren", "steps": 30, "lr": 1e-3, "target_psnr": 40.0, "seed": 0}}
    imgs = torch.nn.functional.interpolate(digits(2), size=(12, 12), mode="bilinear", align_corners=True).clamp(0, 1)
    ws = fit_like_store(meta, imgs, views=2)
    assert len(ws) == 4 and ws.spec == spec
    assert not torch.equal(ws.to_flat()[0], ws.to_flat()[1])
    with pytest.raises(SslWsError):
        fit_like_store(meta, imgs, resize=False)
    with pytest.raises(SslWsError):
        fit_like_store({"spec": spec.to_dict()}, imgs)


def test_bad_inputs():
    with pytest.raises(SslWsError):
        fit_inrs(torch.rand(2, 8, 8))
    with pytest.raises(SslWsError):
        fit_inrs(torch.rand(2, 1, 8, 8), INRSpec((2, 16, 3)))
