"""Weight-space MixUp: variants, partners, labels, lambda distributions."""

import pytest
import torch

from conftest import random_ws
from ssl_ws import INRSpec, SslWsError, render_image
from ssl_ws.augment import MixUp, RandomPermutation
from ssl_ws.augment import functional as F

SPEC = INRSpec((2, 32, 32, 1))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _permuted(ws, seed=1):
    g = gen(seed)
    return F.permute(ws, [torch.argsort(torch.rand(len(ws), h, generator=g), 1) for h in ws.spec.hidden_sizes])


def test_aligned_mixup_with_a_permuted_view_returns_the_network():
    ws = random_ws(SPEC, batch=6)
    view = _permuted(ws)
    mixed, labels = MixUp("aligned").mix(ws, generator=gen(), partner_ws=view)
    assert labels is None
    assert (mixed.to_flat() - ws.to_flat()).abs().max() < 1e-6
    # plain MixUp of the same pair is a different network (the test can fail)
    plain, _ = MixUp("plain").mix(ws, generator=gen(), partner_ws=view)
    assert (render_image(plain, 28, 28) - render_image(ws, 28, 28)).abs().max() > 1e-2


def test_self_partner_is_label_free_and_aligned_back():
    ws = random_ws(SPEC, batch=5)
    mix = MixUp("aligned", partner="self", transform=RandomPermutation())
    mixed, labels = mix.mix(ws, generator=gen())
    assert labels is None
    assert (mixed.to_flat() - ws.to_flat()).abs().max() < 1e-6
    out, _ = MixUp("aligned", partner="self").mix(ws, generator=gen())  # default: one paper augmentation per INR
    assert out.spec == ws.spec and not torch.equal(out.to_flat(), ws.to_flat())


def test_batch_partner_mixes_weights_and_labels_with_the_same_lam():
    ws = random_ws(SPEC, batch=8)
    labels = torch.arange(8) % 4
    mix = MixUp("plain", num_classes=4)
    mixed, soft, lam = mix.mix(ws, labels, generator=gen(), return_lam=True)
    idx = mix.partner_index(8, gen())  # same generator stream: the partner drawn first
    assert bool((idx != torch.arange(8)).all())
    expected = lam[:, None] * ws.to_flat() + (1 - lam[:, None]) * ws.to_flat()[idx]
    assert (mixed.to_flat() - expected).abs().max() < 1e-6
    onehot = torch.nn.functional.one_hot(labels, 4).float()
    assert torch.allclose(soft, lam[:, None] * onehot + (1 - lam[:, None]) * onehot[idx])
    assert torch.allclose(soft.sum(1), torch.ones(8))
    # soft labels in, soft labels out
    _, soft2 = MixUp("plain").mix(ws, onehot, generator=gen())
    assert torch.allclose(soft2, soft)


def test_partner_index_never_self_and_covers_the_batch():
    idx = torch.stack([MixUp().partner_index(5, gen(s)) for s in range(200)])
    assert bool((idx != torch.arange(5)).all())
    assert set(idx[:, 0].tolist()) == {1, 2, 3, 4}


def test_permute_variant_permutes_the_partner():
    ws = random_ws(SPEC, batch=4)
    a, _, lam = MixUp("permute").mix(ws, generator=gen(), partner_ws=ws, return_lam=True)
    # mixing a network with a permutation of itself is not the network (unless lam = 1)
    assert (a.to_flat() - ws.to_flat()).abs().max() > 1e-3


def test_lam_distributions():
    u = MixUp(alpha=None).sample_lam(4000, gen())
    assert 0 <= u.min() and u.max() <= 1 and abs(u.mean().item() - 0.5) < 0.03 and abs(u.std().item() - 0.2887) < 0.02
    b = MixUp(alpha=0.2).sample_lam(4000, gen())
    assert abs(b.mean().item() - 0.5) < 0.03
    assert ((b < 0.1) | (b > 0.9)).float().mean() > 0.6  # Beta(0.2, 0.2) piles up at the ends
    assert torch.equal(MixUp(alpha=2.0).sample_lam(10, gen(3)), MixUp(alpha=2.0).sample_lam(10, gen(3)))


def test_same_seed_same_mix():
    ws = random_ws(SPEC, batch=8)
    for variant in ["plain", "permute", "aligned"]:
        a, _ = MixUp(variant).mix(ws, generator=gen(4))
        b, _ = MixUp(variant).mix(ws, generator=gen(4))
        assert torch.equal(a.to_flat(), b.to_flat())


def test_mixup_errors():
    ws = random_ws(SPEC, batch=4)
    with pytest.raises(SslWsError, match="num_classes"):
        MixUp().mix(ws, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(SslWsError):
        MixUp(num_classes=3).mix(ws, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(SslWsError):
        MixUp().mix(ws[:1])
    with pytest.raises(SslWsError):
        MixUp().mix(ws, partner_ws=ws[:2])
    with pytest.raises(SslWsError):
        MixUp("nope")
    with pytest.raises(SslWsError):
        MixUp(partner="other")
    with pytest.raises(SslWsError):
        MixUp(alpha=0.0)
