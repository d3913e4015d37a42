"""make_params / apply_params: parameters are a value to replay; seeds give the same batches
as before the split; presets are Pipelines holding MixUp beside the per-view transforms."""

import math

import pytest
import torch

from conftest import random_ws
from ssl_ws import INRSpec, SslWsError
from ssl_ws.augment import MixUp, Pipeline, list_presets, preset
from ssl_ws.augment import functional as F
from ssl_ws.augment import transforms as T
from ssl_ws.augment.presets import BASES, MIXUP_SUFFIXES

SPEC = INRSpec((2, 32, 32, 1))
DEEP = INRSpec((2, 16, 24, 16, 3))

ALL = [
    T.Identity(),
    T.RandomTranslate(),
    T.RandomRotate(),
    T.RandomScale(isotropic=False),
    T.RandomFlip(p_x=0.5, p_y=0.5),
    T.RandomIntensity(),
    T.GaussianNoise((0.0, 0.5)),
    T.Dropout(),
    T.QuantileDropout(),
    T.RandomPermutation(),
    T.RandomSignFlip(),
    T.RandomBiasShift(),
    T.RandomApply(T.RandomRotate(), p=0.5),
    T.OneOf([T.RandomTranslate(), T.GaussianNoise(), T.Dropout()]),
    T.Compose([T.RandomTranslate(), T.RandomApply(T.OneOf([T.RandomSignFlip(), T.QuantileDropout()])), T.RandomPermutation()]),
    preset("strong"),
]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _tensors(params):
    """Every tensor of a (nested) params value, in order."""
    if torch.is_tensor(params):
        yield params
    elif isinstance(params, dict):
        for v in params.values():
            yield from _tensors(v)
    elif isinstance(params, (list, tuple)):
        for v in params:
            yield from _tensors(v)


# --------------------------------------------------------------------------- replay
@pytest.mark.parametrize("t", ALL, ids=lambda t: type(t).__name__)
def test_call_is_apply_of_make_params_and_replays(t):
    ws = random_ws(DEEP, batch=6)
    params = t.make_params(ws, gen(1))
    assert isinstance(params, dict)
    assert all(torch.is_tensor(x) for x in _tensors(params))  # a value to log
    out = t.apply_params(ws, params)
    assert torch.equal(out.to_flat(), t(ws, gen(1)).to_flat())
    assert torch.equal(t.apply_params(ws, params).to_flat(), out.to_flat())  # deterministic: draws nothing
    state = torch.get_rng_state()
    t.apply_params(ws, params)
    assert torch.equal(torch.get_rng_state(), state)


def test_one_permutation_applied_to_two_views():
    v1, v2 = random_ws(SPEC, batch=5, seed=1), random_ws(SPEC, batch=5, seed=2)
    t = T.RandomPermutation()
    params = t.make_params(v1, gen())
    for v in (v1, v2):
        assert torch.equal(t.apply_params(v, params).to_flat(), F.permute(v, params["perms"]).to_flat())


@pytest.mark.parametrize(
    "t",
    [T.RandomTranslate(), T.RandomRotate(), T.RandomScale(isotropic=False), T.RandomFlip(0.5, 0.5), T.RandomIntensity(),
     T.Compose([T.RandomTranslate(), T.RandomRotate(), T.RandomIntensity()])],
    ids=lambda t: type(t).__name__,
)
def test_same_params_on_a_permuted_copy_give_the_permuted_result(t):
    # warps act on the input columns of W_0 and intensity on the output rows of W_L;
    # a hidden-neuron permutation acts on the other side, so the two commute
    ws = random_ws(SPEC, batch=6)
    perms = T.sample_permutations(ws, gen(7))
    copy = F.permute(ws, perms)
    params = t.make_params(ws, gen())
    expected = F.permute(t.apply_params(ws, params), perms)
    assert torch.allclose(t.apply_params(copy, params).to_flat(), expected.to_flat(), atol=1e-6)


def test_params_drawn_for_one_batch_fit_another_of_the_same_spec():
    a, b = random_ws(SPEC, batch=4, seed=1), random_ws(SPEC, batch=4, seed=2)
    t = preset("strong")
    params = t.make_params(a, gen())
    out = t.apply_params(b, params)
    assert out.spec == SPEC and len(out) == 4
    # the translation drawn for a moves b by the same shift: b_0' = b_0 - W_0 t (translate is first)
    shift = params["inner"][0]["shift"]
    first = T.RandomTranslate().apply_params(b, {"shift": shift})
    assert torch.allclose(first.biases[0], b.biases[0] - torch.bmm(b.weights[0], shift.unsqueeze(-1)).squeeze(-1))


def test_one_of_draws_nothing_for_a_branch_no_inr_chose():
    ws = random_ws(SPEC, batch=4)
    params = T.OneOf([T.RandomTranslate(), T.RandomScale()], p=[1.0, 0.0]).make_params(ws, gen())
    assert bool((params["choice"] == 0).all())
    assert params["inner"][1] is None and params["inner"][0]["shift"].shape == (4, 2)


# ----------------------------------------------------- same seed, same batch as before
def _paper_by_hand(ws, g):
    """The paper preset written out as it was before make_params: draws in this order."""
    b, spec = len(ws), ws.spec
    ws = F.translate(ws, -0.25 + 0.5 * torch.rand(b, spec.in_dim, generator=g))
    ws = F.rotate(ws, (-30.0 + 60.0 * torch.rand(b, generator=g)) * (math.pi / 180.0))
    sigma = 0.32 + 0.0 * torch.rand(b, generator=g)
    eps = torch.randn(b, spec.n_params, generator=g)
    noise, pos = [], 0
    for t in (t for pair in zip(ws.weights, ws.biases) for t in pair):
        noise.append(eps[:, pos : pos + t[0].numel()].view(t.shape))
        pos += t[0].numel()
    ws = F.gaussian_noise(ws, sigma, noise)
    ws = F.sign_flip(ws, [1.0 - 2.0 * (torch.rand(b, h, generator=g) < 0.5).float() for h in spec.hidden_sizes])
    return F.permute(ws, [torch.argsort(torch.rand(b, h, generator=g), dim=1) for h in spec.hidden_sizes])


def _strong_tail_by_hand(ws, g):
    """..., RandomApply(Dropout(), 0.5), RandomApply(QuantileDropout(), 0.5): mask, then the inner draws."""
    b = len(ws)
    mask = torch.rand(b, generator=g) < 0.5
    p = torch.full((b,), 0.1)
    keep = torch.rand(b, ws.spec.n_params, generator=g) >= p[:, None]
    ws = T.select(mask, F.dropout(ws, p, keep), ws)
    mask = torch.rand(b, generator=g) < 0.5
    q = 0.0 + 0.1 * torch.rand(b, generator=g)  # U(0, max_q)
    return T.select(mask, F.quantile_dropout(ws, q), ws)


@pytest.mark.parametrize("spec", [SPEC, DEEP], ids=["2-32-32-1", "2-16-24-16-3"])
def test_same_seed_gives_the_batch_of_the_sample_and_apply_order(spec):
    ws = random_ws(spec, batch=8)
    g1, g2 = gen(3), gen(3)
    assert torch.equal(preset("paper")(ws, g1).to_flat(), _paper_by_hand(ws, g2).to_flat())
    assert torch.equal(g1.get_state(), g2.get_state())  # the same numbers drawn, no more
    tail = T.Compose([T.RandomApply(T.Dropout(), p=0.5), T.RandomApply(T.QuantileDropout(), p=0.5)])
    assert torch.equal(tail(ws, g1).to_flat(), _strong_tail_by_hand(ws, g2).to_flat())
    assert torch.equal(g1.get_state(), g2.get_state())


def test_strong_preset_matches_values_recorded_before_the_split():
    # recorded from the sample-and-apply implementation (commit 879776f) at this seed
    ws = random_ws(SPEC, batch=3)
    g = gen(5)
    out = preset("strong")(ws, g).to_flat()
    recorded = [
        [0.004583875648677349, -0.0206504724919796, 0.0035864445380866528, 0.0, 0.0017925876891240478, -0.0010891680140048265],
        [0.39593249559402466, -0.01353991124778986, -0.005783601198345423, -0.0008188618812710047, -0.0, 0.012693994678556919],
        [0.38874441385269165, -0.0, -0.001847333856858313, 0.017373478040099144, 0.0, -0.0029941475950181484],
    ]
    assert torch.allclose(out[:, ::211], torch.tensor(recorded), atol=1e-6, rtol=0)
    assert torch.allclose(out.sum(1), torch.tensor([-2.4397268295288086, 1.7851848602294922, -4.088961124420166]), atol=1e-4, rtol=0)
    assert torch.rand(2, generator=g).tolist() == [0.9204017519950867, 0.6922769546508789]  # as many numbers drawn


# ------------------------------------------------------------------------- Pipeline
def test_preset_is_a_pipeline_with_its_mixup():
    names = list(list_presets()) + [f"{b}+{s}" for b in BASES for s in MIXUP_SUFFIXES]
    ws = random_ws(SPEC, batch=4)
    for name in names:
        p = preset(name, num_classes=3)
        assert isinstance(p, Pipeline) and isinstance(p.per_view, T.Compose) and p.name == name
        suffix = name.partition("+")[2]
        if suffix:
            assert isinstance(p.mixup, MixUp) and p.mixup.num_classes == 3
            assert {k: getattr(p.mixup, k) for k in ("variant", "partner")} == MIXUP_SUFFIXES[suffix][0]
        else:
            assert p.mixup is None
        # calling a Pipeline applies the per-view transforms, then its MixUp, from one generator
        g = gen()
        expect = p.per_view(ws, g)
        if p.mixup is not None:
            expect = p.mixup.mix(expect, generator=g)[0]
        assert torch.equal(p(ws, gen()).to_flat(), expect.to_flat())
        # make_params / apply_params are the per-view part's
        assert torch.equal(p.apply_params(ws, p.make_params(ws, gen())).to_flat(), p.per_view(ws, gen()).to_flat())
    assert "mixup=MixUp(variant='aligned'" in repr(preset("paper+mixup")) and "RandomRotate" in repr(preset("paper+mixup"))
    assert not hasattr(T.Compose([]), "mixup") and not hasattr(T.TwoViews(preset("paper+mixup")), "mixup")


def test_pipeline_returns_what_it_was_given():
    ws, labels = random_ws(SPEC, batch=4), torch.tensor([0, 1, 2, 1])
    mixed, soft = preset("symmetry", mixup="plain", num_classes=3)(ws, gen(), labels=labels)
    g = gen()
    ref, ref_soft = MixUp("plain", num_classes=3).mix(preset("symmetry").per_view(ws, g), labels, generator=g)
    assert torch.equal(mixed.to_flat(), ref.to_flat()) and torch.equal(soft, ref_soft)
    assert torch.allclose(soft.sum(1), torch.ones(4))
    same, same_labels = preset("symmetry")(ws, gen(), labels=labels)   # no MixUp: labels unchanged
    assert same_labels is labels and torch.equal(same.to_flat(), preset("symmetry")(ws, gen()).to_flat())
    # partner "view": the two fits are mixed first, then the mixed view is transformed
    other = random_ws(SPEC, batch=4)
    view = preset("symmetry", mixup="aligned", partner="view")(ws, gen(), partner=other)
    g = gen()
    ref = preset("symmetry").per_view(MixUp("aligned").mix(ws, generator=g, partner_ws=other)[0], g)
    assert torch.equal(view.to_flat(), ref.to_flat())
    with pytest.raises(SslWsError, match="needs the other fit"):
        preset("symmetry", mixup="aligned", partner="view")(ws, gen())
    with pytest.raises(SslWsError, match="names its MixUp already"):
        preset("paper+mixup", mixup="plain")


def test_pipeline_arguments():
    p = Pipeline([T.RandomTranslate(), T.RandomPermutation()])
    assert isinstance(p.per_view, T.Compose) and p.mixup is None
    with pytest.raises(SslWsError):
        Pipeline(lambda ws, g: ws)
    with pytest.raises(SslWsError):
        Pipeline(T.Identity(), mixup="aligned")
    with pytest.raises(SslWsError, match="not a Transform"):
        T.Compose([lambda ws, g: ws])
