"""Weight-space augmentations: batched, exact, with aligned MixUp.

Shamsian et al., "Improved Generalization of Weight Space Networks via Augmentations"
(ICML 2024), laid out as torchvision ``transforms/v2``:

* :mod:`.functional` (``F``): pure batched kernels (warps, intensity, noise and dropout,
  exact symmetries, ``mixup``, ``align``);
* :mod:`.transforms`: randomised wrappers (``make_params`` / ``apply_params``) and containers;
* :mod:`.mixup`: :class:`MixUp` (plain / permute / aligned; batch, view or self partner);
* :mod:`.align`: weight matching (Git Re-Basin);
* :mod:`.pipeline`: :class:`Pipeline` ``(per_view, mixup=None)``, a training loop's augmentation;
* :mod:`.presets`: ``preset(name, mixup=..., partner=...)`` and ``list_presets()``;
* :mod:`.primitives`: random draws and per-INR gathers shared by the above.
"""

from . import functional
from .align import weight_matching
from .functional import align
from .mixup import MixUp
from .pipeline import Pipeline
from .presets import list_presets, preset, register_preset
from .primitives import sample_permutations
from .transforms import (
    TRANSFORMS,
    Compose,
    Dropout,
    GaussianNoise,
    Identity,
    OneOf,
    QuantileDropout,
    RandomApply,
    RandomBiasShift,
    RandomFlip,
    RandomIntensity,
    RandomPermutation,
    RandomRotate,
    RandomScale,
    RandomSignFlip,
    RandomTranslate,
    Transform,
    TwoViews,
)

__all__ = [
    "functional",
    "align",
    "weight_matching",
    "MixUp",
    "Pipeline",
    "preset",
    "list_presets",
    "register_preset",
    "TRANSFORMS",
    "Transform",
    "Compose",
    "Dropout",
    "GaussianNoise",
    "Identity",
    "OneOf",
    "QuantileDropout",
    "RandomApply",
    "RandomBiasShift",
    "RandomFlip",
    "RandomIntensity",
    "RandomPermutation",
    "RandomRotate",
    "RandomScale",
    "RandomSignFlip",
    "RandomTranslate",
    "TwoViews",
    "sample_permutations",
]
