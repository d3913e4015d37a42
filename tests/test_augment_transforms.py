"""Randomised transforms, composition and presets: reproducible, per-INR, in range."""

import math

import pytest
import torch

from conftest import random_ws
from ssl_ws import INRSpec, SslWsError, render_image
from ssl_ws.augment import functional as F
from ssl_ws.augment import transforms as T
from ssl_ws.augment import MixUp, list_presets, preset

SPEC = INRSpec((2, 32, 32, 1))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _img(ws):
    return render_image(ws, 28, 28)


ALL = [
    T.RandomTranslate(),
    T.RandomRotate(),
    T.RandomScale(),
    T.RandomScale(isotropic=False),
    T.RandomFlip(p_x=0.5, p_y=0.5),
    T.RandomIntensity(),
    T.GaussianNoise(),
    T.GaussianNoise((0.0, 0.5)),
    T.Dropout(),
    T.QuantileDropout(),
    T.RandomPermutation(),
    T.RandomSignFlip(),
    T.RandomBiasShift(),
    T.RandomApply(T.RandomRotate(), p=0.5),
    T.OneOf([T.RandomTranslate(), T.GaussianNoise()]),
    T.Compose([T.RandomTranslate(), T.RandomPermutation()]),
]


@pytest.mark.parametrize("t", ALL, ids=lambda t: type(t).__name__)
def test_same_seed_same_batch_and_per_inr_parameters(t):
    ws = random_ws(SPEC, batch=8)
    a, b, c = t(ws, gen(1)), t(ws, gen(1)), t(ws, gen(2))
    assert torch.equal(a.to_flat(), b.to_flat())
    assert not torch.equal(a.to_flat(), c.to_flat())
    # independent parameters per INR: the same INR repeated gets different augmentations
    rep = ws[[0] * 8]
    out = t(rep, gen(3)).to_flat()
    assert len({tuple(row.tolist()) for row in out}) > 1
    assert a.spec == ws.spec and len(a) == len(ws)


def test_rotation_angles_in_range_and_spread():
    ws = random_ws(SPEC, batch=1)[[0] * 400]
    out = T.RandomRotate(30.0)(ws, gen())
    # W0' = W0 R(-theta): recover R(-theta) by least squares from the 32x2 first layer
    r = torch.linalg.lstsq(ws.weights[0].double(), out.weights[0].double()).solution
    theta = torch.atan2(-r[:, 0, 1], r[:, 0, 0]) * 180 / math.pi  # R(-t)[0,1] = sin(t)
    assert theta.abs().max() <= 30.0 + 1e-3
    assert theta.min() < -25 and theta.max() > 25
    assert abs(theta.std().item() - 30 / math.sqrt(3)) < 2.0  # uniform on [-30, 30]


def test_translation_range():
    ws = random_ws(SPEC, batch=1)[[0] * 300]
    out = T.RandomTranslate(0.25)(ws, gen())
    # b0 - b0' = W0 t
    t = torch.linalg.lstsq(ws.weights[0].double(), (ws.biases[0] - out.biases[0]).double().unsqueeze(-1)).solution[..., 0]
    assert t.abs().max() <= 0.25 + 1e-4 and t.abs().max() > 0.2
    assert abs(t.mean().item()) < 0.03


def test_dropout_rate_statistics():
    ws = random_ws(SPEC, batch=32)
    out = T.Dropout(p=0.2)(ws, gen()).to_flat()
    rate = (out == 0).float().mean().item()
    assert abs(rate - 0.2) < 0.01


def test_sign_flip_probability_and_bias_shift_range():
    ws = random_ws(SPEC, batch=64)
    flipped = T.RandomSignFlip(p=0.3)(ws, gen())
    frac = (flipped.biases[0] * ws.biases[0] < 0).float().mean().item()
    assert abs(frac - 0.3) < 0.03
    shifted = T.RandomBiasShift(k_max=4)(ws, gen())
    k = (shifted.biases[0] - ws.biases[0]) * SPEC.w0 / math.pi
    assert (k - k.round()).abs().max() < 1e-3
    assert set(k.round().long().unique().tolist()) == set(range(-4, 5))


def test_random_apply_is_per_inr():
    ws = random_ws(SPEC, batch=400)
    out = T.RandomApply(T.RandomTranslate(), p=0.3)(ws, gen())
    changed = (out.biases[0] != ws.biases[0]).any(dim=1).float()
    assert abs(changed.mean().item() - 0.3) < 0.07
    # untouched INRs are exactly the originals
    same = ~changed.bool()
    assert torch.equal(out.to_flat()[same], ws.to_flat()[same])


def test_one_of_picks_one_per_inr():
    ws = random_ws(SPEC, batch=300)
    out = T.OneOf([T.RandomTranslate(), T.RandomScale()], p=[0.25, 0.75])(ws, gen())
    translated = (out.biases[0] != ws.biases[0]).any(dim=1)
    scaled = (out.weights[0] != ws.weights[0]).any(dim=(1, 2))
    assert not bool((translated & scaled).any())
    assert bool((translated | scaled).all())
    assert abs(translated.float().mean().item() - 0.25) < 0.07


def test_symmetry_preset_and_two_views_keep_the_image():
    ws = random_ws(SPEC, batch=6)
    v1, v2 = T.TwoViews(preset("symmetry"))(ws, gen())
    assert not torch.equal(v1.to_flat(), v2.to_flat())
    for v in (v1, v2):
        assert (_img(v) - _img(ws)).abs().max() < 1e-4
    a, b = T.TwoViews(T.RandomTranslate(), T.Identity())(ws, gen())
    assert torch.equal(b.to_flat(), ws.to_flat()) and not torch.equal(a.to_flat(), ws.to_flat())


@pytest.mark.parametrize("spec", [INRSpec((2, 16, 1)), INRSpec((2, 16, 24, 16, 3))], ids=["2-layer", "4-layer-rgb"])
def test_presets_run_on_other_architectures(spec):
    ws = random_ws(spec, batch=4)
    for name in list_presets():
        out = preset(name)(ws, gen())
        assert out.spec == spec and len(out) == 4
    assert (_img(preset("symmetry")(ws, gen())) - _img(ws)).abs().max() < 1e-4


def test_preset_contract():
    presets = list_presets()
    for name in ["none", "weak", "symmetry", "warp", "paper", "paper+mixup"]:
        assert name in presets and presets[name]
    assert preset("paper").mixup is None
    mix = preset("paper+mixup", num_classes=10).mixup
    assert isinstance(mix, MixUp) and mix.variant == "aligned" and mix.partner == "batch"
    assert preset("warp+selfmix").mixup.partner == "self"
    assert preset("none+permmix").mixup.variant == "permute"
    ws = random_ws(SPEC, batch=3)
    assert torch.equal(preset("none")(ws, gen()).to_flat(), ws.to_flat())
    for bad in ["nope", "paper+nope", "paper+mixup+mixup", ""]:
        with pytest.raises(SslWsError):
            preset(bad)


def test_relu_inrs_refuse_sine_symmetries():
    ws = random_ws(INRSpec((2, 16, 16, 1), activation="relu"), batch=2)
    for t in [T.RandomSignFlip(), T.RandomBiasShift(), preset("paper")]:
        with pytest.raises(SslWsError, match="sine"):
            t(ws, gen())
    preset("warp")(ws, gen())  # warps are fine for any activation


def test_bad_arguments():
    with pytest.raises(SslWsError):
        T.RandomApply(T.Identity(), p=1.5)
    with pytest.raises(SslWsError):
        T.RandomScale((-1.0, 1.0))
    with pytest.raises(SslWsError):
        T.OneOf([])
    with pytest.raises(SslWsError):
        T.RandomTranslate()("not a batch")
    with pytest.raises(SslWsError):
        T.RandomTranslate()(random_ws(SPEC, batch=2), generator=0)


def test_bias_shift_warning_follows_the_data_spread():
    step = math.pi / SPEC.w0
    shifting = preset("symmetry-shift")
    assert T.bias_shift_warning(shifting, [step / 10], SPEC.w0) is not None  # narrow biases: warn
    assert T.bias_shift_warning(shifting, [step], SPEC.w0) is None  # wide biases: fine
    nested = T.Compose([T.RandomApply(T.OneOf([T.GaussianNoise(), T.RandomBiasShift()]), p=0.5)])
    assert T.bias_shift_warning(nested, [step / 10], SPEC.w0) is not None
    for name in ["symmetry", "paper", "strong", "paper+mixup"]:  # no preset but symmetry-shift shifts biases
        assert T.bias_shift_warning(preset(name), [step / 10], SPEC.w0) is None


def test_symmetry_shift_preset_keeps_the_image():
    ws = random_ws(SPEC, batch=8)
    assert (_img(preset("symmetry-shift")(ws, gen())) - _img(ws)).abs().max() < 1e-4


def test_training_warns_about_bias_shifts_on_narrow_biases(capsys):
    from ssl_ws.models.normalize import WeightNormalizer
    from ssl_ws.train.runs import warn_about_augmentation

    ws = random_ws(SPEC, batch=16)
    narrow = WeightNormalizer.fit(ws.__class__(ws.weights, [b * 1e-3 for b in ws.biases], SPEC), SPEC)
    cfg = {"augment": {"preset": "paper", "preset2": "symmetry-shift"}}
    assert warn_about_augmentation(cfg, narrow, SPEC) is not None
    assert "symmetry-shift" in capsys.readouterr().err
    assert warn_about_augmentation({"augment": {"preset": "strong"}}, narrow, SPEC) is None
