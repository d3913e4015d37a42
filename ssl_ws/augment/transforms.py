"""Randomised weight-space transforms: sample per-INR parameters, call the kernels.

In the style of torchvision's ``transforms/v2``: each transform is a small callable
object ``t(ws, generator=None) -> WeightSpace`` that draws *independent*
parameters for every INR of the batch from ``generator`` (a CPU
``torch.Generator``; ``None`` uses torch's global RNG) and applies a pure kernel
of :mod:`ssl_ws.augment.functional` to the whole batch at once, on ``ws``'s
device. The same generator seed gives the same augmented batch.

Default strengths are those of Shamsian et al., "Improved Generalization of Weight
Space Networks via Augmentations" (ICML 2024): translation up to 0.25 (coordinate
units, the image spans [-1, 1]), rotation up to 30 degrees, scaling by
1 +- 0.2, Gaussian noise 0.32 x each tensor's std, dropout p = 0.1, quantile
dropout of up to 10% of the parameters, sign flips with probability 0.5 per
neuron. Bias shifts by k pi / w0 (|k| <= 1) are not in the paper's defaults and
are left out of every preset but ``symmetry-shift`` (see :class:`RandomBiasShift`).

Composition: :class:`Compose` (in order), :class:`RandomApply` (with probability
``p`` *per INR*), :class:`OneOf` (one transform chosen per INR), :class:`Identity`,
and :class:`TwoViews` (two independently augmented views of one batch, for
contrastive learning). Per-INR choices are made by applying the candidate
transform to the whole batch and selecting per INR (batched, no loops).
"""

from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..errors import SslWsError
from ..weights import WeightSpace
from . import functional as F

__all__ = [
    "bias_shift_warning",
    "Transform",
    "Identity",
    "RandomTranslate",
    "RandomRotate",
    "RandomScale",
    "RandomFlip",
    "RandomIntensity",
    "GaussianNoise",
    "Dropout",
    "QuantileDropout",
    "RandomPermutation",
    "RandomSignFlip",
    "RandomBiasShift",
    "Compose",
    "RandomApply",
    "OneOf",
    "TwoViews",
    "sample_permutations",
    "select",
    "TRANSFORMS",
]

Range = Union[float, Tuple[float, float]]


# --------------------------------------------------------------------- sampling helpers
def _gen(generator: Optional[torch.Generator]) -> Optional[torch.Generator]:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise SslWsError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


def _rand(shape, generator, device) -> Tensor:
    """Uniform [0, 1) of ``shape``, drawn on the generator's device, moved to ``device``."""
    gdev = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, device=gdev).to(device)


def _uniform(lo: float, hi: float, shape, generator, device) -> Tensor:
    return lo + (hi - lo) * _rand(shape, generator, device)


def _range(value: Range, name: str, symmetric: bool = True) -> Tuple[float, float]:
    """``v -> (-v, v)`` (symmetric) or a given ``(lo, hi)``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or float(value[0]) > float(value[1]):
            raise SslWsError(f"{name} must be a number or a (low, high) pair with low <= high, got {value!r}")
        return float(value[0]), float(value[1])
    v = float(value)
    if symmetric:
        if v < 0:
            raise SslWsError(f"{name} must be >= 0, got {v}")
        return -v, v
    return v, v


def _check_prob(p: float, name: str = "p") -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise SslWsError(f"{name} must be a probability in [0, 1], got {p}")
    return p


def sample_permutations(ws: WeightSpace, generator: Optional[torch.Generator] = None) -> List[Tensor]:
    """Independent uniformly random permutations ``[B, h_i]`` of every hidden layer, per INR."""
    return [
        torch.argsort(_rand((len(ws), h), generator, ws.device), dim=1) for h in ws.spec.hidden_sizes
    ]


def select(mask: Tensor, a: WeightSpace, b: WeightSpace) -> WeightSpace:
    """Per INR: ``a[i]`` where ``mask[i]`` else ``b[i]`` (``mask: bool [B]``)."""

    def pick(x: Tensor, y: Tensor) -> Tensor:
        return torch.where(mask.view(-1, *([1] * (x.dim() - 1))), x, y)

    return WeightSpace([pick(x, y) for x, y in zip(a.weights, b.weights)], [pick(x, y) for x, y in zip(a.biases, b.biases)], a.spec)


# --------------------------------------------------------------------------- base
class Transform:
    """Base class: ``t(ws, generator=None) -> WeightSpace``."""

    #: a one-line description shown by ``ssl-ws augmentations``
    summary = ""

    def __call__(self, ws: WeightSpace, generator: Optional[torch.Generator] = None) -> WeightSpace:
        if not isinstance(ws, WeightSpace):
            raise SslWsError(f"{type(self).__name__} expects a WeightSpace, got {type(ws).__name__}")
        if len(ws) == 0:
            return ws
        return self.apply(ws, _gen(generator))

    def apply(self, ws: WeightSpace, generator: Optional[torch.Generator]) -> WeightSpace:  # pragma: no cover
        raise NotImplementedError

    def _args(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._args()})"


class Identity(Transform):
    summary = "no change"

    def apply(self, ws, generator):
        return ws


# ---------------------------------------------------------------------------- warps
class RandomTranslate(Transform):
    """Shift the content by ``t ~ U(-max_shift, max_shift)`` per axis: ``g(x) = f(x - t)``."""

    summary = "translate the content by t ~ U(-0.25, 0.25) per axis (exact, first-layer bias)"

    def __init__(self, max_shift: Range = 0.25):
        self.max_shift = max_shift
        self._lo, self._hi = _range(max_shift, "max_shift")

    def apply(self, ws, generator):
        t = _uniform(self._lo, self._hi, (len(ws), ws.spec.in_dim), generator, ws.device)
        return F.translate(ws, t)


class RandomRotate(Transform):
    """Rotate 2-D content by ``theta ~ U(-degrees, degrees)`` about the centre."""

    summary = "rotate the content by U(-30, 30) degrees about the centre (exact, first layer; 2-D)"

    def __init__(self, degrees: Range = 30.0):
        self.degrees = degrees
        self._lo, self._hi = _range(degrees, "degrees")

    def apply(self, ws, generator):
        deg = _uniform(self._lo, self._hi, (len(ws),), generator, ws.device)
        return F.rotate(ws, deg * (math.pi / 180.0))


class RandomScale(Transform):
    """Scale the content by ``s ~ U(lo, hi)``: one factor (isotropic) or one per axis."""

    summary = "scale the content by U(0.8, 1.2), isotropic or per axis (exact, first layer)"

    def __init__(self, scale: Tuple[float, float] = (0.8, 1.2), isotropic: bool = True):
        self.scale = tuple(scale)
        self.isotropic = bool(isotropic)
        self._lo, self._hi = _range(self.scale, "scale")
        if self._lo <= 0:
            raise SslWsError(f"scale factors must be positive, got {self.scale}")

    def apply(self, ws, generator):
        shape = (len(ws),) if self.isotropic else (len(ws), ws.spec.in_dim)
        return F.scale(ws, _uniform(self._lo, self._hi, shape, generator, ws.device))


class RandomFlip(Transform):
    """Mirror the x axis with probability ``p_x`` and the y axis with ``p_y``, per INR."""

    summary = "mirror x with probability 0.5 (and y with p_y) (exact, first layer)"

    def __init__(self, p_x: float = 0.5, p_y: float = 0.0):
        self.p_x = _check_prob(p_x, "p_x")
        self.p_y = _check_prob(p_y, "p_y")

    def apply(self, ws, generator):
        d = ws.spec.in_dim
        probs = torch.zeros(d, device=ws.device)
        probs[0] = self.p_x
        if d > 1:
            probs[1] = self.p_y
        mask = _rand((len(ws), d), generator, ws.device) < probs
        return F.flip(ws, mask)


class RandomIntensity(Transform):
    """``g = s f + c`` with ``s ~ U(scale)``, ``c ~ U(shift)`` per INR (output space, last layer)."""

    summary = "output intensity g = s f + c, s ~ U(0.8, 1.2), c ~ U(-0.1, 0.1) (exact, last layer)"

    def __init__(self, scale: Tuple[float, float] = (0.8, 1.2), shift: Range = 0.1):
        self.scale = tuple(scale)
        self.shift = shift
        self._s = _range(self.scale, "scale")
        self._c = _range(shift, "shift")

    def apply(self, ws, generator):
        s = _uniform(*self._s, (len(ws),), generator, ws.device)
        c = _uniform(*self._c, (len(ws),), generator, ws.device)
        return F.intensity(ws, s, c)


# -------------------------------------------------------------------- data-agnostic
class GaussianNoise(Transform):
    """Add ``sigma * std(tensor) * N(0, 1)``; ``sigma`` fixed or ``~ U(lo, hi)`` per INR."""

    summary = "add Gaussian noise of 0.32 x each tensor's std (per INR)"

    def __init__(self, sigma: Range = 0.32):
        self.sigma = sigma
        self._lo, self._hi = _range(sigma, "sigma", symmetric=False)
        if self._lo < 0:
            raise SslWsError(f"sigma must be >= 0, got {sigma}")

    def apply(self, ws, generator):
        sig = _uniform(self._lo, self._hi, (len(ws),), generator, ws.device)
        return F.gaussian_noise(ws, sig, generator)


class Dropout(Transform):
    """Zero each parameter with probability ``p`` (inverted-dropout rescaling by default)."""

    summary = "zero each parameter with probability 0.1, rescale the rest by 1/(1-p)"

    def __init__(self, p: float = 0.1, rescale: bool = True):
        self.p = _check_prob(p)
        if self.p >= 1:
            raise SslWsError("dropout p must be < 1")
        self.rescale = bool(rescale)

    def apply(self, ws, generator):
        return F.dropout(ws, torch.full((len(ws),), self.p), generator, rescale=self.rescale)


class QuantileDropout(Transform):
    """Zero the fraction ``q ~ U(0, max_q)`` of smallest-magnitude parameters, per INR."""

    summary = "zero the q ~ U(0, 0.1) fraction of smallest-magnitude parameters"

    def __init__(self, max_q: Range = 0.1):
        self.max_q = max_q
        lo, self._hi = _range(max_q, "max_q")
        self._lo = max(lo, 0.0) if not isinstance(max_q, (tuple, list)) else lo
        if self._lo < 0 or self._hi > 1:
            raise SslWsError(f"max_q must lie in [0, 1], got {max_q}")

    def apply(self, ws, generator):
        return F.quantile_dropout(ws, _uniform(self._lo, self._hi, (len(ws),), generator, ws.device))


# ------------------------------------------------------------------ exact symmetries
class RandomPermutation(Transform):
    """Permute every hidden layer's neurons by an independent uniform permutation per INR."""

    summary = "permute hidden neurons at random (exact symmetry)"

    def apply(self, ws, generator):
        return F.permute(ws, sample_permutations(ws, generator))


class RandomSignFlip(Transform):
    """Flip each hidden neuron's sign with probability ``p`` (sine INRs only)."""

    summary = "flip hidden neurons' signs with probability 0.5 (exact symmetry of sine)"

    def __init__(self, p: float = 0.5):
        self.p = _check_prob(p)

    def apply(self, ws, generator):
        F._require_odd(ws, "sign flip")
        signs = [1.0 - 2.0 * (_rand((len(ws), h), generator, ws.device) < self.p).float() for h in ws.spec.hidden_sizes]
        return F.sign_flip(ws, signs)


class RandomBiasShift(Transform):
    """Shift each hidden bias by ``k pi / w0``, ``k ~ U{-k_max..k_max}`` (sine INRs only).

    Exact: ``sin(w0 (z + k pi / w0)) = (-1)^k sin(w0 z)``, the sign undone by the
    outgoing weights. But the step ``pi / w0`` (0.105 for ``w0 = 30``) can dwarf the
    spread of the data's biases: on the DWSNets-recipe Fashion-MNIST INRs the hidden
    biases have a std of 0.010-0.020, a shifted bias lands 5-40 std out, and a
    supervised DWSNet trained with shifts stayed near chance (0.18 test accuracy
    with ``k_max=1`` against 0.37 with permutations and sign flips alone; mini-scale
    Table 1, benchmarks/paper/TABLES-mini.md). Training warns when that happens
    (:func:`bias_shift_warning`); use it for INRs whose biases spread wider.
    """

    summary = "shift hidden biases by k*pi/w0, |k| <= 1 (exact symmetry of SIREN)"

    def __init__(self, k_max: int = 1):
        if int(k_max) != k_max or k_max < 0:
            raise SslWsError(f"k_max must be a non-negative integer, got {k_max!r}")
        self.k_max = int(k_max)

    def apply(self, ws, generator):
        F._require_odd(ws, "bias shift by k*pi/w0")
        n = 2 * self.k_max + 1
        ks = [torch.floor(_rand((len(ws), h), generator, ws.device) * n).long().clamp_(max=n - 1) - self.k_max for h in ws.spec.hidden_sizes]
        return F.bias_shift(ws, ks)


# -------------------------------------------------------------------- composition
def _check_transform(t, where: str) -> Callable:
    if not callable(t):
        raise SslWsError(f"{where}: {t!r} is not a transform")
    return t


class Compose(Transform):
    """Apply transforms in order. ``mixup``: a :class:`~ssl_ws.augment.mixup.MixUp` the
    training loop applies *after* this per-view pipeline (``None`` when the
    pipeline has none); calling a Compose never mixes."""

    summary = "apply transforms in order"

    def __init__(self, transforms: Sequence[Callable], mixup=None, name: Optional[str] = None):
        self.transforms = [_check_transform(t, "Compose") for t in transforms]
        self.mixup = mixup
        self.name = name

    def apply(self, ws, generator):
        for t in self.transforms:
            ws = t(ws, generator)
        return ws

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        extra = f", mixup={self.mixup!r}" if self.mixup is not None else ""
        return f"Compose([{inner}]{extra})"


class RandomApply(Transform):
    """Apply ``transform`` to each INR independently with probability ``p``."""

    summary = "apply a transform with probability p, independently per INR"

    def __init__(self, transform: Callable, p: float = 0.5):
        self.transform = _check_transform(transform, "RandomApply")
        self.p = _check_prob(p)

    def apply(self, ws, generator):
        mask = _rand((len(ws),), generator, ws.device) < self.p
        out = self.transform(ws, generator)
        return select(mask, out, ws)


class OneOf(Transform):
    """Apply one of ``transforms`` per INR, chosen with probabilities ``p`` (uniform by default)."""

    summary = "apply one transform chosen at random per INR"

    def __init__(self, transforms: Sequence[Callable], p: Optional[Sequence[float]] = None):
        self.transforms = [_check_transform(t, "OneOf") for t in transforms]
        if not self.transforms:
            raise SslWsError("OneOf needs at least one transform")
        if p is None:
            p = [1.0 / len(self.transforms)] * len(self.transforms)
        if len(p) != len(self.transforms) or min(p) < 0 or sum(p) <= 0:
            raise SslWsError(f"OneOf needs one non-negative probability per transform, got {p!r}")
        total = float(sum(p))
        self.p = [float(x) / total for x in p]

    def apply(self, ws, generator):
        u = _rand((len(ws),), generator, ws.device)
        edges = torch.tensor(self.p, device=ws.device).cumsum(0)
        choice = torch.searchsorted(edges, u, right=True).clamp_(max=len(self.transforms) - 1)
        out = ws
        for k, t in enumerate(self.transforms):
            mask = choice == k
            if bool(mask.any()):
                out = select(mask, t(ws, generator), out)
        return out

    def __repr__(self) -> str:
        return f"OneOf([{', '.join(repr(t) for t in self.transforms)}], p={self.p})"


class TwoViews:
    """``(t1(ws), t2(ws))``: two independently augmented views (``t2`` defaults to ``t1``)."""

    summary = "two independently augmented views of one batch (contrastive learning)"

    def __init__(self, t1: Callable, t2: Optional[Callable] = None):
        self.t1 = _check_transform(t1, "TwoViews")
        self.t2 = _check_transform(t2, "TwoViews") if t2 is not None else self.t1

    @property
    def mixup(self):
        return getattr(self.t1, "mixup", None)

    def __call__(self, ws: WeightSpace, generator: Optional[torch.Generator] = None) -> Tuple[WeightSpace, WeightSpace]:
        return self.t1(ws, generator), self.t2(ws, generator)

    def __repr__(self) -> str:
        return f"TwoViews({self.t1!r}, {self.t2!r})"


def _walk(t):
    yield t
    for child in list(getattr(t, "transforms", [])) + [getattr(t, n, None) for n in ("transform", "t1", "t2")]:
        if child is not None:
            yield from _walk(child)


def bias_shift_warning(transform, hidden_bias_std: Sequence[float], w0: float) -> Optional[str]:
    """A one-line warning when ``transform`` holds a :class:`RandomBiasShift` whose step
    ``pi / w0`` exceeds 4x the largest hidden-bias std of the data (``None`` otherwise).

    Such shifts are exact symmetries but move the biases far outside the range the
    encoder trains on (see :class:`RandomBiasShift`)."""
    shifts = [t for t in _walk(transform) if isinstance(t, RandomBiasShift) and t.k_max > 0]
    if not shifts or not len(hidden_bias_std):
        return None
    step, spread = math.pi / float(w0), max(float(s) for s in hidden_bias_std)
    if step <= 4 * spread:
        return None
    return (
        f"the augmentation shifts SIREN biases by multiples of pi/w0 = {step:.3g}, but the training INRs' hidden "
        f"biases have std <= {spread:.3g}: shifted biases fall far outside the data and training may stall "
        "(use a preset without bias shifts, e.g. 'symmetry' or 'paper')"
    )


#: name -> transform class, listed by ``ssl-ws augmentations``
TRANSFORMS = {
    cls.__name__: cls
    for cls in [
        RandomTranslate,
        RandomRotate,
        RandomScale,
        RandomFlip,
        RandomIntensity,
        GaussianNoise,
        Dropout,
        QuantileDropout,
        RandomPermutation,
        RandomSignFlip,
        RandomBiasShift,
        Compose,
        RandomApply,
        OneOf,
        Identity,
        TwoViews,
    ]
}
