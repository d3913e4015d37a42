"""Recipe: add a weight-space augmentation.

1. Subclass ``Transform``. ``make_params(ws, generator)`` draws every random number,
   one value per INR (leading dim ``len(ws)``), from ``generator``, reading only the
   batch's size / spec / device; ``apply_params(ws, params)`` applies them with the
   kernels of ``ssl_ws.augment.functional`` (pure: it draws nothing).
2. Use it like any transform: in ``Compose`` / ``RandomApply`` / ``OneOf``, in a
   ``Pipeline`` next to a MixUp, or as a named preset (``register_preset``) that configs
   can select with ``augment.preset``.
"""

import torch

from conftest import random_ws
from ssl_ws import INRSpec, render_image
from ssl_ws.augment import Compose, Pipeline, RandomPermutation, RandomTranslate, Transform, preset, presets, register_preset

from ssl_ws.augment import functional as F
from ssl_ws.augment.primitives import uniform

SPEC = INRSpec((2, 32, 32, 1))


class RandomBrightness(Transform):
    """``g = f + c`` with ``c ~ U(-max_shift, max_shift)`` per INR (exact, last-layer bias)."""

    summary = "add c ~ U(-0.1, 0.1) to the image (exact, last-layer bias)"

    def __init__(self, max_shift: float = 0.1):
        self.max_shift = max_shift

    def make_params(self, ws, generator=None):
        return {"shift": uniform(-self.max_shift, self.max_shift, (len(ws),), generator, ws.device)}

    def apply_params(self, ws, params):
        return F.intensity(ws, scale=1.0, shift=params["shift"])


def test_a_new_augmentation_in_a_compose():
    ws = random_ws(SPEC, batch=4)
    aug = Compose([RandomPermutation(), RandomBrightness()])
    g = torch.Generator().manual_seed(0)
    params = aug.make_params(ws, g)  # {"inner": [{"perms": [...]}, {"shift": [4]}]}
    out = aug.apply_params(ws, params)
    assert torch.equal(out.to_flat(), aug(ws, torch.Generator().manual_seed(0)).to_flat())
    # the permutation leaves the image as it is; the brightness adds c to every pixel
    shift = params["inner"][1]["shift"]
    assert torch.allclose(render_image(out, 8, 8), render_image(ws, 8, 8) + shift.view(-1, 1, 1, 1), atol=1e-5)


def test_a_new_augmentation_as_a_named_preset(monkeypatch):
    monkeypatch.setattr(presets, "BASES", dict(presets.BASES))  # registered for this test only
    register_preset("bright", lambda: [RandomTranslate(), RandomBrightness()], "translate, brightness")
    aug = preset("bright+mixup", num_classes=2)  # what `augment.preset: bright+mixup` in a config builds
    assert isinstance(aug, Pipeline) and isinstance(aug.per_view.transforms[1], RandomBrightness)
    assert aug.mixup.variant == "aligned"
    ws = random_ws(SPEC, batch=4)
    assert aug(ws, torch.Generator().manual_seed(1)).spec == SPEC
