"""Randomised weight-space transforms: draw per-INR parameters, then call a kernel.

As in torchvision ``transforms/v2``, every :class:`Transform` has two halves:

* ``make_params(ws, generator=None) -> dict`` draws *all* the randomness, independent per INR
  (leading dimension ``B``), from ``generator`` (``None``: torch's global RNG); it reads only the
  batch's size, spec, device and dtype, so the parameters fit any batch of that size and spec;
* ``apply_params(ws, params) -> WeightSpace`` is pure: one :mod:`ssl_ws.augment.functional`
  kernel call on the whole batch, on ``ws``'s device.

``t(ws, generator=None) == t.apply_params(ws, t.make_params(ws, generator))``; the parameters
can be logged or replayed on another batch. Parameter dicts: ``RandomTranslate {"shift": [B,
d_in]}``, ``RandomRotate {"angle": [B]}`` (radians), ``RandomScale {"factor": [B] | [B, d_in]}``,
``RandomFlip {"mask": bool [B, d_in]}``, ``RandomIntensity {"scale", "shift": [B]}``,
``GaussianNoise {"sigma": [B], "noise": [eps per tensor]}``, ``Dropout {"p": [B], "keep": bool
[B, P]}``, ``QuantileDropout {"q": [B]}``, ``RandomPermutation {"perms"}``, ``RandomSignFlip
{"signs"}``, ``RandomBiasShift {"k"}`` (each ``[[B, h_i], ...]``), ``Compose {"inner": [...]}``,
``RandomApply {"mask": bool [B], "inner"}``, ``OneOf {"choice": [B], "inner": [params or None]}``,
``Identity {}``. :class:`RandomApply` and :class:`OneOf` choose per INR by applying the candidate
to the whole batch and selecting; :class:`TwoViews` makes two independent views of one batch.

Default strengths are those of Shamsian et al., "Improved Generalization of Weight Space
Networks via Augmentations" (ICML 2024); :class:`RandomBiasShift` is not among them. A new
augmentation subclasses :class:`Transform` (example: ``tests/test_recipe_augmentation.py``).
MixUp is no per-view transform: :class:`~ssl_ws.augment.pipeline.Pipeline` holds it.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..errors import SslWsError
from ..weights import WeightSpace
from . import functional as F
from . import primitives
from .primitives import check_generator, rand, randn, sample_permutations, uniform

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
Params = Dict[str, Any]


# ----------------------------------------------------------------- argument helpers
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


def select(mask: Tensor, a: WeightSpace, b: WeightSpace) -> WeightSpace:
    """Per INR: ``a[i]`` where ``mask[i]`` else ``b[i]`` (``mask: bool [B]``)."""

    def pick(x: Tensor, y: Tensor) -> Tensor:
        return torch.where(mask.view(-1, *([1] * (x.dim() - 1))), x, y)

    return WeightSpace([pick(x, y) for x, y in zip(a.weights, b.weights)], [pick(x, y) for x, y in zip(a.biases, b.biases)], a.spec)


# --------------------------------------------------------------------------- base
def _check_call(t, ws, generator) -> bool:
    """Check the arguments of ``t(ws, generator)``; False for an empty batch (nothing to do)."""
    if not isinstance(ws, WeightSpace):
        raise SslWsError(f"{type(t).__name__} expects a WeightSpace, got {type(ws).__name__}")
    if len(ws) == 0:
        return False
    check_generator(generator)
    return True


class Transform:
    """Base class: ``make_params(ws, generator) -> dict`` draws, ``apply_params(ws, params)``
    applies (pure), and ``t(ws, generator=None)`` does both (see the module docstring)."""

    #: a one-line description shown by ``ssl-ws augmentations``
    summary = ""

    def __call__(self, ws: WeightSpace, generator: Optional[torch.Generator] = None) -> WeightSpace:
        if not _check_call(self, ws, generator):
            return ws
        return self.apply_params(ws, self.make_params(ws, generator))

    def make_params(self, ws: WeightSpace, generator: Optional[torch.Generator] = None) -> Params:
        """Draw this transform's parameters for every INR of ``ws`` (none by default)."""
        return {}

    def apply_params(self, ws: WeightSpace, params: Params) -> WeightSpace:  # pragma: no cover
        """Apply parameters drawn by :meth:`make_params` (deterministic, draws nothing)."""
        raise NotImplementedError

    def _args(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._args()})"


class Identity(Transform):
    summary = "no change"

    def apply_params(self, ws, params):
        return ws


# ---------------------------------------------------------------------------- warps
class RandomTranslate(Transform):
    """Shift the content by ``t ~ U(-max_shift, max_shift)`` per axis: ``g(x) = f(x - t)``."""

    summary = "translate the content by t ~ U(-0.25, 0.25) per axis (exact, first-layer bias)"

    def __init__(self, max_shift: Range = 0.25):
        self.max_shift = max_shift
        self._lo, self._hi = _range(max_shift, "max_shift")

    def make_params(self, ws, generator=None):
        return {"shift": uniform(self._lo, self._hi, (len(ws), ws.spec.in_dim), generator, ws.device)}

    def apply_params(self, ws, params):
        return F.translate(ws, params["shift"])


class RandomRotate(Transform):
    """Rotate 2-D content by ``theta ~ U(-degrees, degrees)`` about the centre."""

    summary = "rotate the content by U(-30, 30) degrees about the centre (exact, first layer; 2-D)"

    def __init__(self, degrees: Range = 30.0):
        self.degrees = degrees
        self._lo, self._hi = _range(degrees, "degrees")

    def make_params(self, ws, generator=None):
        deg = uniform(self._lo, self._hi, (len(ws),), generator, ws.device)
        return {"angle": deg * (math.pi / 180.0)}

    def apply_params(self, ws, params):
        return F.rotate(ws, params["angle"])


class RandomScale(Transform):
    """Scale the content by ``s ~ U(lo, hi)``: one factor (isotropic) or one per axis."""

    summary = "scale the content by U(0.8, 1.2), isotropic or per axis (exact, first layer)"

    def __init__(self, scale: Tuple[float, float] = (0.8, 1.2), isotropic: bool = True):
        self.scale = tuple(scale)
        self.isotropic = bool(isotropic)
        self._lo, self._hi = _range(self.scale, "scale")
        if self._lo <= 0:
            raise SslWsError(f"scale factors must be positive, got {self.scale}")

    def make_params(self, ws, generator=None):
        shape = (len(ws),) if self.isotropic else (len(ws), ws.spec.in_dim)
        return {"factor": uniform(self._lo, self._hi, shape, generator, ws.device)}

    def apply_params(self, ws, params):
        return F.scale(ws, params["factor"], check=False)


class RandomFlip(Transform):
    """Mirror the x axis with probability ``p_x`` and the y axis with ``p_y``, per INR."""

    summary = "mirror x with probability 0.5 (and y with p_y) (exact, first layer)"

    def __init__(self, p_x: float = 0.5, p_y: float = 0.0):
        self.p_x = _check_prob(p_x, "p_x")
        self.p_y = _check_prob(p_y, "p_y")

    def make_params(self, ws, generator=None):
        d = ws.spec.in_dim
        probs = torch.zeros(d, device=ws.device)
        probs[0] = self.p_x
        if d > 1:
            probs[1] = self.p_y
        return {"mask": rand((len(ws), d), generator, ws.device) < probs}

    def apply_params(self, ws, params):
        return F.flip(ws, params["mask"])


class RandomIntensity(Transform):
    """``g = s f + c`` with ``s ~ U(scale)``, ``c ~ U(shift)`` per INR (output space, last layer)."""

    summary = "output intensity g = s f + c, s ~ U(0.8, 1.2), c ~ U(-0.1, 0.1) (exact, last layer)"

    def __init__(self, scale: Tuple[float, float] = (0.8, 1.2), shift: Range = 0.1):
        self.scale = tuple(scale)
        self.shift = shift
        self._s = _range(self.scale, "scale")
        self._c = _range(shift, "shift")

    def make_params(self, ws, generator=None):
        s = uniform(*self._s, (len(ws),), generator, ws.device)
        c = uniform(*self._c, (len(ws),), generator, ws.device)
        return {"scale": s, "shift": c}

    def apply_params(self, ws, params):
        return F.intensity(ws, params["scale"], params["shift"])


# -------------------------------------------------------------------- data-agnostic
class GaussianNoise(Transform):
    """Add ``sigma * std(tensor) * N(0, 1)``; ``sigma`` fixed or ``~ U(lo, hi)`` per INR."""

    summary = "add Gaussian noise of 0.32 x each tensor's std (per INR)"

    def __init__(self, sigma: Range = 0.32):
        self.sigma = sigma
        self._lo, self._hi = _range(sigma, "sigma", symmetric=False)
        if self._lo < 0:
            raise SslWsError(f"sigma must be >= 0, got {sigma}")

    def make_params(self, ws, generator=None):
        batch = len(ws)
        sigma = uniform(self._lo, self._hi, (batch,), generator, ws.device)
        # one draw for the whole batch, sliced per tensor in the flat parameter order
        eps = randn((batch, ws.spec.n_params), generator, ws.device, ws.dtype)
        noise, pos = [], 0
        for o, d in ws.spec.weight_shapes:
            noise.append(eps[:, pos : pos + o * d].view(batch, o, d))
            noise.append(eps[:, pos + o * d : pos + o * d + o])
            pos += o * d + o
        return {"sigma": sigma, "noise": noise}

    def apply_params(self, ws, params):
        return F.gaussian_noise(ws, params["sigma"], params["noise"])


class Dropout(Transform):
    """Zero each parameter with probability ``p`` (inverted-dropout rescaling by default)."""

    summary = "zero each parameter with probability 0.1, rescale the rest by 1/(1-p)"

    def __init__(self, p: float = 0.1, rescale: bool = True):
        self.p = _check_prob(p)
        if self.p >= 1:
            raise SslWsError("dropout p must be < 1")
        self.rescale = bool(rescale)

    def make_params(self, ws, generator=None):
        p = torch.full((len(ws),), self.p).to(device=ws.device, dtype=ws.dtype)
        keep = rand((len(ws), ws.spec.n_params), generator, ws.device, ws.dtype) >= p.unsqueeze(1)
        return {"p": p, "keep": keep}

    def apply_params(self, ws, params):
        return F.dropout(ws, params["p"], params["keep"], rescale=self.rescale, check=False)


class QuantileDropout(Transform):
    """Zero the fraction ``q ~ U(0, max_q)`` of smallest-magnitude parameters, per INR."""

    summary = "zero the q ~ U(0, 0.1) fraction of smallest-magnitude parameters"

    def __init__(self, max_q: Range = 0.1):
        self.max_q = max_q
        lo, self._hi = _range(max_q, "max_q")
        self._lo = max(lo, 0.0) if not isinstance(max_q, (tuple, list)) else lo
        if self._lo < 0 or self._hi > 1:
            raise SslWsError(f"max_q must lie in [0, 1], got {max_q}")

    def make_params(self, ws, generator=None):
        return {"q": uniform(self._lo, self._hi, (len(ws),), generator, ws.device)}

    def apply_params(self, ws, params):
        return F.quantile_dropout(ws, params["q"], check=False)


# ------------------------------------------------------------------ exact symmetries
class RandomPermutation(Transform):
    """Permute every hidden layer's neurons by an independent uniform permutation per INR."""

    summary = "permute hidden neurons at random (exact symmetry)"

    def make_params(self, ws, generator=None):
        return {"perms": sample_permutations(ws, generator)}

    def apply_params(self, ws, params):
        return F.permute(ws, params["perms"])


class RandomSignFlip(Transform):
    """Flip each hidden neuron's sign with probability ``p`` (sine INRs only)."""

    summary = "flip hidden neurons' signs with probability 0.5 (exact symmetry of sine)"

    def __init__(self, p: float = 0.5):
        self.p = _check_prob(p)

    def make_params(self, ws, generator=None):
        F.require_odd(ws, "sign flip")
        return {"signs": [1.0 - 2.0 * (rand((len(ws), h), generator, ws.device) < self.p).float() for h in ws.spec.hidden_sizes]}

    def apply_params(self, ws, params):
        return F.sign_flip(ws, params["signs"], check=False)


class RandomBiasShift(Transform):
    """Shift each hidden bias by ``k pi / w0``, ``k ~ U{-k_max..k_max}`` (sine INRs only).

    Exact: ``sin(w0 (z + k pi / w0)) = (-1)^k sin(w0 z)``, the sign undone by the
    outgoing weights. The step ``pi / w0`` can dwarf the spread of the data's hidden
    biases and stall training (benchmarks/RESULTS.md, "Paper benchmarks", Table 1);
    :func:`bias_shift_warning` warns when it exceeds 4x their std.
    """

    summary = "shift hidden biases by k*pi/w0, |k| <= 1 (exact symmetry of SIREN)"

    def __init__(self, k_max: int = 1):
        if int(k_max) != k_max or k_max < 0:
            raise SslWsError(f"k_max must be a non-negative integer, got {k_max!r}")
        self.k_max = int(k_max)

    def make_params(self, ws, generator=None):
        F.require_odd(ws, "bias shift by k*pi/w0")
        n = 2 * self.k_max + 1
        return {"k": [torch.floor(rand((len(ws), h), generator, ws.device) * n).long().clamp_(max=n - 1) - self.k_max for h in ws.spec.hidden_sizes]}

    def apply_params(self, ws, params):
        return F.bias_shift(ws, params["k"], check=False)


# -------------------------------------------------------------------- composition
def _check_transform(t, where: str) -> Transform:
    if not isinstance(t, Transform):
        raise SslWsError(f"{where}: {t!r} is not a Transform (subclass ssl_ws.augment.Transform: make_params + apply_params)")
    return t


class Compose(Transform):
    """Apply transforms in order; their parameters are drawn in order, on the input batch."""

    summary = "apply transforms in order"

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = [_check_transform(t, "Compose") for t in transforms]

    def __call__(self, ws: WeightSpace, generator: Optional[torch.Generator] = None) -> WeightSpace:
        # transform by transform: the same draws and batch as apply_params(ws, make_params(ws, generator))
        # (make_params reads only the batch's shape), but each transform's parameters are freed once
        # applied (GaussianNoise's are the size of the batch; cost: benchmarks/RESULTS.md, "Augmentations")
        if not _check_call(self, ws, generator):
            return ws
        for t in self.transforms:
            ws = t(ws, generator)
        return ws

    def make_params(self, ws, generator=None):
        return {"inner": [t.make_params(ws, generator) for t in self.transforms]}

    def apply_params(self, ws, params):
        for t, p in zip(self.transforms, params["inner"]):
            ws = t.apply_params(ws, p)
        return ws

    def __repr__(self) -> str:
        return f"Compose([{', '.join(repr(t) for t in self.transforms)}])"


class RandomApply(Transform):
    """Apply ``transform`` to each INR independently with probability ``p``."""

    summary = "apply a transform with probability p, independently per INR"

    def __init__(self, transform: Transform, p: float = 0.5):
        self.transform = _check_transform(transform, "RandomApply")
        self.p = _check_prob(p)

    def make_params(self, ws, generator=None):
        mask = rand((len(ws),), generator, ws.device) < self.p
        return {"mask": mask, "inner": self.transform.make_params(ws, generator)}

    def apply_params(self, ws, params):
        return select(params["mask"], self.transform.apply_params(ws, params["inner"]), ws)


class OneOf(Transform):
    """Apply one of ``transforms`` per INR, chosen with probabilities ``p`` (uniform by default)."""

    summary = "apply one transform chosen at random per INR"

    def __init__(self, transforms: Sequence[Transform], p: Optional[Sequence[float]] = None):
        self.transforms = [_check_transform(t, "OneOf") for t in transforms]
        if not self.transforms:
            raise SslWsError("OneOf needs at least one transform")
        if p is None:
            p = [1.0 / len(self.transforms)] * len(self.transforms)
        if len(p) != len(self.transforms) or min(p) < 0 or sum(p) <= 0:
            raise SslWsError(f"OneOf needs one non-negative probability per transform, got {p!r}")
        total = float(sum(p))
        self.p = [float(x) / total for x in p]

    def make_params(self, ws, generator=None):
        host = primitives.draws_on_host(generator)
        u = rand((len(ws),), generator, "cpu" if host else ws.device)
        edges = torch.tensor(self.p, device=u.device).cumsum(0)
        choice = torch.searchsorted(edges, u, right=True).clamp_(max=len(self.transforms) - 1)
        # a branch no INR chose draws nothing, where the choice is host data; drawn on a device, every
        # branch draws (reading the choice would wait for the device)
        inner = [t.make_params(ws, generator) if not host or bool((choice == k).any()) else None
                 for k, t in enumerate(self.transforms)]
        return {"choice": choice.to(ws.device), "inner": inner}

    def apply_params(self, ws, params):
        out = ws
        for k, (t, p) in enumerate(zip(self.transforms, params["inner"])):
            if p is not None:
                out = select(params["choice"] == k, t.apply_params(ws, p), out)
        return out

    def __repr__(self) -> str:
        return f"OneOf([{', '.join(repr(t) for t in self.transforms)}], p={self.p})"


class TwoViews:
    """``(t1(ws), t2(ws))``: two independently augmented views (``t2`` defaults to ``t1``)."""

    summary = "two independently augmented views of one batch (contrastive learning)"

    def __init__(self, t1: Callable, t2: Optional[Callable] = None):
        self.t1 = _check_callable(t1, "TwoViews")
        self.t2 = _check_callable(t2, "TwoViews") if t2 is not None else self.t1

    def __call__(self, ws: WeightSpace, generator: Optional[torch.Generator] = None) -> Tuple[WeightSpace, WeightSpace]:
        return self.t1(ws, generator), self.t2(ws, generator)

    def __repr__(self) -> str:
        return f"TwoViews({self.t1!r}, {self.t2!r})"


def _check_callable(t, where: str) -> Callable:
    if not callable(t):
        raise SslWsError(f"{where}: {t!r} is not a transform")
    return t


def _walk(t):
    yield t
    for child in list(getattr(t, "transforms", [])) + [getattr(t, n, None) for n in ("transform", "t1", "t2", "per_view")]:
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
