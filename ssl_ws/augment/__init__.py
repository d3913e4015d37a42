"""Weight-space augmentations: batched, exact, with aligned MixUp.

Shamsian et al., "Improved Generalization of Weight Space Networks via
Augmentations" (ICML 2024). Layout, in the style of torchvision ``transforms/v2``:

* :mod:`.functional` (imported as ``F``): pure batched kernels -- warps
  (``translate``, ``rotate``, ``scale``, ``flip``, ``affine``, ``intensity``),
  data-agnostic perturbations (``gaussian_noise``, ``dropout``,
  ``quantile_dropout``), exact symmetries (``permute``, ``sign_flip``,
  ``bias_shift``), ``mixup`` and ``align``.
* :mod:`.transforms`: randomised wrappers ``t(ws, generator=None)``: ``make_params``
  draws independent parameters per INR (a dict of tensors to log or replay),
  ``apply_params`` calls the kernel; plus ``Compose``, ``RandomApply``, ``OneOf``,
  ``Identity``, ``TwoViews``.
* :mod:`.mixup`: :class:`MixUp` (plain / permute / aligned; partner from the batch,
  a given batch such as another view, or the INR itself).
* :mod:`.align`: weight matching (Git Re-Basin) with scipy's linear assignment.
* :mod:`.pipeline`: :class:`Pipeline` ``(per_view, mixup=None)``, a training loop's augmentation.
* :mod:`.presets`: ``preset(name, mixup=..., partner=...)`` (a Pipeline) and ``list_presets()``.
* :mod:`.primitives`: random draws and per-INR gathers shared by the modules above.

How a training loop uses a preset (it returns what it was given, as torchvision v2 does)::

    aug = preset("paper", mixup="aligned", num_classes=10)
    ws, soft_labels = aug(ws, g, labels=labels)   # per-view transforms, then MixUp
    view = aug(ws, g)                             # label-free
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
