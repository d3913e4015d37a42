"""Named augmentation pipelines: ``preset("paper", mixup="aligned")``.

``preset(name, mixup=..., partner=...)`` returns a :class:`~ssl_ws.augment.pipeline.Pipeline`:
the base's per-view transforms and the MixUp (or none) it applies after them::

    aug = preset("paper", mixup="aligned", num_classes=10)
    ws, soft_labels = aug(ws, g, labels=y)

A config says ``augment.preset=paper augment.mixup=aligned`` (``augment.mixup_partner``,
``augment.mixup_alpha``). As a shorthand, a name may end in one MixUp suffix:
``<base>+mixup`` (aligned, partner from the batch), ``+permmix`` (random
permutation), ``+plainmix`` (no alignment), ``+selfmix`` (aligned with an
augmented copy of the INR itself, label-free). Parameters are the paper's
defaults (Shamsian et al., ICML 2024); see :mod:`ssl_ws.augment.transforms`.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

from ..errors import SslWsError
from . import transforms as T
from .mixup import MixUp
from .pipeline import Pipeline

__all__ = ["preset", "split_preset", "list_presets", "register_preset", "BASES", "MIXUP_SUFFIXES"]


def _none():
    return [T.Identity()]


def _weak():
    return [T.RandomTranslate(0.1), T.GaussianNoise(0.1)]


def _crop():
    return [T.RandomScale((0.9, 1.15)), T.RandomTranslate(0.1), T.RandomRotate(10.0),
            T.RandomIntensity((0.9, 1.1), 0.05), T.GaussianNoise(0.1)]


def _symmetry():
    return [T.RandomPermutation(), T.RandomSignFlip()]


def _symmetry_shift():
    return [T.RandomPermutation(), T.RandomSignFlip(), T.RandomBiasShift()]


def _warp():
    return [T.RandomTranslate(), T.RandomRotate(), T.RandomScale()]


def _noise():
    return [T.GaussianNoise(), T.Dropout(), T.QuantileDropout()]


def _paper():
    return [T.RandomTranslate(), T.RandomRotate(), T.GaussianNoise(), T.RandomSignFlip(), T.RandomPermutation()]


def _strong():
    return [
        T.RandomTranslate(),
        T.RandomRotate(),
        T.RandomScale(),
        T.RandomIntensity(),
        T.GaussianNoise(),
        T.RandomApply(T.Dropout(), p=0.5),
        T.RandomApply(T.QuantileDropout(), p=0.5),
        T.RandomSignFlip(),
        T.RandomPermutation(),
    ]


#: base name -> (builder, description)
BASES: Dict[str, Tuple[Callable, str]] = {
    "none": (_none, "no augmentation"),
    "weak": (_weak, "translate up to 0.1, Gaussian noise 0.1 x std"),
    "crop": (_crop, "the INR-space analogue of a random resized crop: scale 0.9-1.15, translate 0.1, rotate 10 deg, "
                     "intensity 0.9-1.1 +- 0.05, Gaussian noise 0.1 x std"),
    "symmetry": (_symmetry, "exact symmetries only: neuron permutation, sign flip (image unchanged)"),
    "symmetry-shift": (
        _symmetry_shift,
        "symmetry + SIREN bias shifts by k*pi/w0, |k| <= 1 (exact; only for INRs whose hidden biases spread wider than pi/w0)",
    ),
    "warp": (_warp, "INR-space warps: translate 0.25, rotate 30 deg, scale 0.8-1.2"),
    "noise": (_noise, "data-agnostic: Gaussian noise 0.32 x std, dropout 0.1, quantile dropout up to 10%"),
    "paper": (_paper, "the paper's pipeline: translate, rotate, Gaussian noise, sign flip, permutation"),
    "strong": (_strong, "every family: warps, intensity, noise, (quantile) dropout, permutation and sign flip"),
}

#: suffix -> (MixUp keyword arguments, description)
MIXUP_SUFFIXES: Dict[str, Tuple[dict, str]] = {
    "mixup": (dict(variant="aligned", partner="batch"), "aligned MixUp with another INR of the batch (labels mixed)"),
    "permmix": (dict(variant="permute", partner="batch"), "MixUp with a randomly permuted INR of the batch"),
    "plainmix": (dict(variant="plain", partner="batch"), "plain MixUp with another INR of the batch"),
    "selfmix": (dict(variant="aligned", partner="self"), "aligned MixUp with an augmented copy of the INR itself (label-free)"),
}


def register_preset(name: str, builder: Callable[[], list], description: str, *, replace: bool = False) -> None:
    """Make ``augment.preset=<name>`` (and ``<name>+mixup`` ...) build ``Compose(builder())``.
    ``builder`` returns a fresh list of transforms each call."""
    key = str(name).strip().lower()
    if not key or "+" in key:
        raise SslWsError(f"a preset name is one word without '+', got {name!r}")
    if key in BASES and not replace:
        raise SslWsError(f"a preset named {key!r} exists already; pass replace=True to replace it")
    if not callable(builder):
        raise SslWsError(f"the builder of preset {key!r} must be callable")
    BASES[key] = (builder, str(description))


def split_preset(name: str) -> Tuple[str, Optional[dict]]:
    """``(base, MixUp keyword arguments or None)`` of a preset name such as ``paper+mixup``."""
    if not isinstance(name, str) or not name:
        raise SslWsError(f"augmentation preset must be a name, got {name!r}")
    base, *suffixes = name.strip().lower().split("+")
    if base not in BASES:
        raise SslWsError(f"unknown augmentation preset {name!r}; choose from {', '.join(list_presets())}")
    if len(suffixes) > 1 or (suffixes and suffixes[0] not in MIXUP_SUFFIXES):
        raise SslWsError(
            f"unknown augmentation preset {name!r}: after '+' use one of {', '.join(MIXUP_SUFFIXES)}"
        )
    return base, (dict(MIXUP_SUFFIXES[suffixes[0]][0]) if suffixes else None)


def preset(name: str, num_classes: Optional[int] = None, alpha: Optional[float] = None,
           mixup: Optional[str] = None, partner: str = "batch") -> Pipeline:
    """The pipeline called ``name`` (see :func:`list_presets`).

    Args:
        num_classes: passed to the MixUp, for integer labels.
        alpha: MixUp's Beta(alpha, alpha); ``None`` draws lam from U(0, 1).
        mixup: MixUp variant (``"plain"``, ``"permute"``, ``"aligned"``), ``"none"`` or ``None``
            (the name's suffix, if any, decides); not both a suffix and a variant.
        partner: the MixUp partner with ``mixup`` (``"batch"``, ``"self"``, ``"view"``).

    Returns:
        A :class:`~ssl_ws.augment.pipeline.Pipeline`: ``per_view`` a
        :class:`~ssl_ws.augment.transforms.Compose`, ``mixup`` a
        :class:`~ssl_ws.augment.mixup.MixUp` or ``None``.
    """
    base, kwargs = split_preset(name)
    if mixup not in (None, "none"):
        if kwargs is not None:
            raise SslWsError(f"preset {name!r} names its MixUp already; give mixup={mixup!r} with the base {base!r}")
        kwargs = dict(variant=mixup, partner=partner)
    mix = MixUp(num_classes=num_classes, alpha=alpha, **kwargs) if kwargs is not None else None
    return Pipeline(T.Compose(BASES[base][0]()), mixup=mix, name=name)


def list_presets() -> Dict[str, str]:
    """Preset name -> one-line description (every base, and the MixUp combinations of ``paper``;
    any base accepts any MixUp suffix)."""
    out = {name: desc for name, (_, desc) in BASES.items()}
    for suffix, (_, desc) in MIXUP_SUFFIXES.items():
        out[f"paper+{suffix}"] = f"paper, then {desc}"
    return out
