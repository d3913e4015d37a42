"""Pure, batched, deterministic weight-space augmentation kernels.

Every function takes a :class:`~ssl_ws.weights.WeightSpace` of ``B`` INRs and per-INR
parameters (leading dimension ``B``; a Python number is broadcast) and returns a new
WeightSpace on the same device. Nothing is sampled here (:func:`gaussian_noise` is given
``eps``, :func:`dropout` its keep mask); :mod:`ssl_ws.augment.transforms` draws the parameters.

Families of Shamsian et al., "Improved Generalization of Weight Space Networks via
Augmentations" (ICML 2024), on the INR

    h_0 = x,   h_i = act(w0 (W_i h_{i-1} + b_i))  (i < L),   f(x) = W_L h_{L-1} + b_L + offset.

**Warps** (exact, first layer only): ``g(x) = f(A^{-1}(x - t))`` moves the content at ``u`` to
``A u + t``, via ``W_0' = W_0 A^{-1}``, ``b_0' = b_0 - W_0 A^{-1} t`` (:func:`affine`);
:func:`translate` ``A = I``, :func:`rotate` ``A = R(theta)`` (clockwise on screen, ``y`` down:
:mod:`ssl_ws.inr.render`), :func:`scale` ``A = diag(s)``, :func:`flip` ``A = diag(+-1)``.

**Intensity** (exact, last layer): ``g = s f + c`` via ``W_L' = s W_L``,
``b_L' = s b_L + (s - 1) offset + c`` (:func:`intensity`; ``offset`` lives outside the weights).

**Data-agnostic**: :func:`gaussian_noise` ``theta + sigma std(theta) eps`` (std per INR and
tensor), :func:`dropout` (masked entries zeroed, the rest times ``1/(1-p)`` by default),
:func:`quantile_dropout` (the fraction ``q`` smallest in magnitude zeroed).

**Exact symmetries**: :func:`permute` ``W_i' = P_i W_i P_{i-1}^T``, ``b_i' = P_i b_i``
(``P_0 = P_L = I``; new neuron ``j`` = old neuron ``perm[j]``); :func:`sign_flip` (``sin``)
``W_i' = S_i W_i S_{i-1}``, ``b_i' = S_i b_i``, ``S_i = diag(+-1)``; :func:`bias_shift` (SIREN)
``b_i' = b_i + k pi / w0``, outgoing columns times ``(-1)^k``.

**MixUp**: :func:`mixup` ``lam a + (1 - lam) b``; :func:`align` permutes ``b`` onto ``a`` first
(weight matching, Ainsworth et al., "Git Re-Basin", ICLR 2023; :mod:`ssl_ws.augment.align`).
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..errors import SslWsError
from ..weights import WeightSpace, _check_same_spec
from .align import weight_matching
from .primitives import gather_cols, gather_rows

__all__ = [
    "affine",
    "translate",
    "rotate",
    "scale",
    "flip",
    "intensity",
    "gaussian_noise",
    "dropout",
    "quantile_dropout",
    "permute",
    "sign_flip",
    "bias_shift",
    "mixup",
    "align",
    "weight_matching",
    "rotation_matrix",
    "require_odd",
]

Number = Union[int, float]


# --------------------------------------------------------------------------- helpers
def _check_ws(ws) -> None:
    if not isinstance(ws, WeightSpace):
        raise SslWsError(f"expected a WeightSpace, got {type(ws).__name__}")


def _param(value, ws: WeightSpace, name: str, trailing: Sequence[int] = (), allow: Sequence[Sequence[int]] = ()) -> Tensor:
    """A per-INR parameter as a tensor ``[B, *trailing]`` on ``ws``'s device and dtype.

    A number broadcasts; ``[B]`` broadcasts over ``trailing``; shapes in ``allow``
    (without the batch dim) are accepted and returned as they are.
    """
    batch = len(ws)
    t = torch.as_tensor(value, dtype=ws.dtype) if not torch.is_tensor(value) else value
    t = t.to(device=ws.device, dtype=ws.dtype)
    if t.dim() == 0:
        return t.expand(batch, *trailing)
    if t.shape[0] != batch:
        raise SslWsError(f"{name} must have one entry per INR (leading dim {batch}), got shape {tuple(t.shape)}")
    if tuple(t.shape[1:]) == tuple(trailing):
        return t
    for shape in allow:
        if tuple(t.shape[1:]) == tuple(shape):
            return t
    if t.dim() == 1:
        return t.view(batch, *([1] * len(trailing))).expand(batch, *trailing)
    raise SslWsError(f"{name} must have shape [{batch}] or [{batch}, {', '.join(map(str, trailing))}], got {tuple(t.shape)}")


def _std_per_inr(t: Tensor) -> Tensor:
    """Population std of each INR's entries of ``t [B, ...]`` (``Tensor.std`` is far slower on CPU)."""
    flat = t.reshape(len(t), -1)
    centred = flat - flat.mean(dim=1, keepdim=True)
    return torch.linalg.vector_norm(centred, dim=1) / math.sqrt(max(flat.shape[1], 1))


def _per_inr(x: Tensor, t: Tensor) -> Tensor:
    """Reshape a per-INR ``[B]`` tensor to broadcast against ``t [B, ...]``."""
    return x.view(-1, *([1] * (t.dim() - 1)))


# ----------------------------------------------------------------------- INR-space warps
def affine(ws: WeightSpace, matrix: Optional[Tensor] = None, shift: Optional[Tensor] = None, inverse: Optional[Tensor] = None) -> WeightSpace:
    """Warp the INRs' input space: ``g(x) = f(A^{-1} (x - t))``.

    Args:
        matrix: ``A`` as ``[B, d_in, d_in]`` (or ``[d_in, d_in]`` for all); identity if None.
        shift: ``t`` as ``[B, d_in]`` (or ``[d_in]``); zero if None.
        inverse: ``A^{-1}`` if already known (avoids a matrix inverse); then ``matrix`` is ignored.

    ``W_0' = W_0 A^{-1}``, ``b_0' = b_0 - W_0 A^{-1} t``: exact, see the module docstring.
    """
    _check_ws(ws)
    d = ws.spec.in_dim
    batch = len(ws)
    w0, b0 = ws.weights[0], ws.biases[0]
    if inverse is None and matrix is not None:
        matrix = _param(matrix, ws, "matrix", (d, d)) if torch.as_tensor(matrix).dim() != 2 else torch.as_tensor(matrix).to(ws.device, ws.dtype).expand(batch, d, d)
        try:
            inverse = torch.linalg.inv(matrix)
        except RuntimeError as exc:  # singular matrix
            raise SslWsError(f"warp matrix is not invertible: {exc}".splitlines()[0]) from None
    if inverse is not None:
        inv = torch.as_tensor(inverse).to(ws.device, ws.dtype)
        inv = inv.expand(batch, d, d) if inv.dim() == 2 else inv
        if tuple(inv.shape) != (batch, d, d):
            raise SslWsError(f"warp matrix must be [{batch}, {d}, {d}], got {tuple(inv.shape)}")
        w0 = torch.bmm(w0, inv)
    if shift is not None:
        t = torch.as_tensor(shift).to(ws.device, ws.dtype)
        t = t.expand(batch, d) if t.dim() == 1 else t
        if tuple(t.shape) != (batch, d):
            raise SslWsError(f"shift must be [{batch}, {d}], got {tuple(t.shape)}")
        b0 = b0 - torch.bmm(w0, t.unsqueeze(-1)).squeeze(-1)
    return ws.replace(weights=(w0,) + ws.weights[1:], biases=(b0,) + ws.biases[1:])


def translate(ws: WeightSpace, shift) -> WeightSpace:
    """``g(x) = f(x - t)``: the content moves by ``+t`` (``shift: [B, d_in]`` in coordinate units).

    Exact, through the first-layer bias only: ``b_0' = b_0 - W_0 t``.
    """
    _check_ws(ws)
    t = _param(shift, ws, "shift", (ws.spec.in_dim,))
    b0 = ws.biases[0] - torch.bmm(ws.weights[0], t.unsqueeze(-1)).squeeze(-1)
    return ws.replace(biases=(b0,) + ws.biases[1:])


def rotation_matrix(angle: Tensor) -> Tensor:
    """``R(theta) = [[cos, -sin], [sin, cos]]`` for angles ``[B]`` (radians): ``[B, 2, 2]``."""
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def rotate(ws: WeightSpace, angle) -> WeightSpace:
    """Rotate 2-D INRs about the origin: ``g(x) = f(R(-theta) x)`` (``angle: [B]`` radians).

    The content at ``u`` moves to ``R(theta) u``; with ``y`` pointing down in image
    coordinates a positive angle turns the image clockwise. ``W_0' = W_0 R(-theta)``.
    """
    _check_ws(ws)
    if ws.spec.in_dim != 2:
        raise SslWsError(f"rotate needs INRs of 2-D coordinates, these take {ws.spec.in_dim}")
    theta = _param(angle, ws, "angle")
    return affine(ws, inverse=rotation_matrix(-theta))


def scale(ws: WeightSpace, factor, check: bool = True) -> WeightSpace:
    """Scale the content: ``g(x) = f(x / s)`` with ``s: [B]`` (isotropic) or ``[B, d_in]``.

    ``s > 1`` magnifies about the origin. ``W_0' = W_0 diag(1 / s)``.
    ``check=False`` skips reading the values to validate them (a device sync on a GPU): what the
    transforms pass for parameters drawn valid by construction.
    """
    _check_ws(ws)
    s = _param(factor, ws, "factor", (ws.spec.in_dim,))
    if check and bool((s == 0).any()):
        raise SslWsError("scale factors must be non-zero")
    w0 = ws.weights[0] / s.unsqueeze(1)
    return ws.replace(weights=(w0,) + ws.weights[1:])


_AXES = {"x": 0, "y": 1, "z": 2}


def flip(ws: WeightSpace, dims) -> WeightSpace:
    """Mirror coordinates: ``g(x) = f(D x)``, ``D = diag(-1 on flipped axes, +1 elsewhere)``.

    Args:
        dims: ``"x"`` (horizontal mirror), ``"y"`` (vertical), ``"xy"``, or a boolean
            mask ``[B, d_in]`` (or ``[d_in]``) of the axes to flip per INR.
    """
    _check_ws(ws)
    d, batch = ws.spec.in_dim, len(ws)
    if isinstance(dims, str):
        mask = torch.zeros(d, dtype=torch.bool, device=ws.device)
        for ch in dims:
            if ch not in _AXES or _AXES[ch] >= d:
                raise SslWsError(f"flip axis {ch!r} is not one of the INRs' {d} input axes ({'xyz'[:d]})")
            mask[_AXES[ch]] = True
        mask = mask.expand(batch, d)
    else:
        mask = torch.as_tensor(dims, device=ws.device).bool()
        mask = mask.expand(batch, d) if mask.dim() == 1 else mask
        if tuple(mask.shape) != (batch, d):
            raise SslWsError(f"flip mask must be [{batch}, {d}], got {tuple(mask.shape)}")
    sign = 1.0 - 2.0 * mask.to(ws.dtype)
    w0 = ws.weights[0] * sign.unsqueeze(1)
    return ws.replace(weights=(w0,) + ws.weights[1:])


def intensity(ws: WeightSpace, scale=1.0, shift=0.0) -> WeightSpace:
    """Output-space intensity: ``g(x) = s f(x) + c`` (``s, c: [B]`` or ``[B, d_out]``).

    Through the last layer: ``W_L' = s W_L``, ``b_L' = s b_L + (s - 1) offset + c``,
    so the spec's output offset is respected.
    """
    _check_ws(ws)
    c_out = ws.spec.out_dim
    s = _param(scale, ws, "scale", (c_out,))
    c = _param(shift, ws, "shift", (c_out,))
    wl = ws.weights[-1] * s.unsqueeze(-1)
    bl = ws.biases[-1] * s + (s - 1.0) * ws.spec.output_offset + c
    return ws.replace(weights=ws.weights[:-1] + (wl,), biases=ws.biases[:-1] + (bl,))


# ------------------------------------------------------------------- data-agnostic
def gaussian_noise(ws: WeightSpace, sigma, noise: Sequence[Tensor]) -> WeightSpace:
    """``theta' = theta + sigma * std(theta) * eps`` per tensor, ``eps`` given (``N(0, 1)`` in
    :class:`~ssl_ws.augment.transforms.GaussianNoise`).

    ``std`` is taken per INR over each weight / bias tensor (population std, so a
    one-element bias gets no noise); ``sigma: [B]`` is relative to it. ``noise``: one
    ``eps`` per tensor in the flat parameter order ``[W_0, b_0, W_1, b_1, ...]``, each
    of that tensor's shape.
    """
    _check_ws(ws)
    sig = _param(sigma, ws, "sigma")
    tensors = _interleave(ws)
    if not isinstance(noise, (list, tuple)) or len(noise) != len(tensors):
        raise SslWsError(f"noise must be a list of {len(tensors)} tensors, one per weight and bias tensor (W_0, b_0, W_1, ...)")
    out = []
    for t, eps in zip(tensors, noise):
        if not torch.is_tensor(eps) or tuple(eps.shape) != tuple(t.shape):
            got = tuple(eps.shape) if torch.is_tensor(eps) else type(eps).__name__
            raise SslWsError(f"noise tensors must have the shapes of the parameters: {tuple(t.shape)}, got {got}")
        scale = _per_inr(sig * _std_per_inr(t), t)
        out.append(torch.addcmul(t, scale, eps.to(device=t.device, dtype=t.dtype)))
    return ws.replace(weights=out[0::2], biases=out[1::2])


def _interleave(ws: WeightSpace) -> List[Tensor]:
    """``[W_0, b_0, W_1, b_1, ...]``: the flat parameter order."""
    return [t for pair in zip(ws.weights, ws.biases) for t in pair]


def dropout(ws: WeightSpace, p, keep: Tensor, rescale: bool = True, check: bool = True) -> WeightSpace:
    """Zero the parameters where ``keep`` (bool ``[B, P]``, flat parameter order) is False.

    :class:`~ssl_ws.augment.transforms.Dropout` keeps each entry with probability
    ``1 - p`` (``p: [B]``). With ``rescale`` the kept entries are divided by ``1 - p``
    (inverted dropout, as ``torch.nn.functional.dropout`` and the paper's code do).
    ``check=False`` skips reading the values to validate them (a device sync on a GPU): what the
    transforms pass for parameters drawn valid by construction.
    """
    _check_ws(ws)
    prob = _param(p, ws, "p")
    if check and bool(((prob < 0) | (prob >= 1)).any()):
        raise SslWsError("dropout probability must be in [0, 1)")
    factor = 1.0 / (1.0 - prob) if rescale else torch.ones_like(prob)

    flat = ws.to_flat()
    if not torch.is_tensor(keep) or tuple(keep.shape) != tuple(flat.shape) or keep.dtype != torch.bool:
        got = f"{tuple(keep.shape)} ({keep.dtype})" if torch.is_tensor(keep) else type(keep).__name__
        raise SslWsError(f"keep must be a boolean tensor of shape {tuple(flat.shape)}, got {got}")
    keep = keep.to(ws.device)
    out = torch.where(keep, flat * factor.unsqueeze(1), torch.zeros_like(flat))
    return WeightSpace.from_flat(out, ws.spec)


def quantile_dropout(ws: WeightSpace, q, check: bool = True) -> WeightSpace:
    """Zero the ``floor(q P)`` parameters of each INR with the smallest magnitude (``q: [B]``).

    Deterministic; the ranking is over all ``P`` parameters of one INR (weights and
    biases together), as in the paper's quantile augmentation.
    ``check=False`` skips reading the values to validate them (a device sync on a GPU): what the
    transforms pass for parameters drawn valid by construction.
    """
    _check_ws(ws)
    qq = _param(q, ws, "q")
    if check and bool(((qq < 0) | (qq > 1)).any()):
        raise SslWsError("quantile must be in [0, 1]")
    flat = ws.to_flat()
    n = flat.shape[1]
    k = torch.floor(qq * n + 1e-6).long().clamp(0, n)
    # rank-exact even with ties: drop the k smallest by rank, not by a value threshold
    order = flat.abs().argsort(dim=1)
    by_rank = torch.arange(n, device=flat.device).unsqueeze(0) < k.unsqueeze(1)
    drop = torch.zeros_like(by_rank).scatter_(1, order, by_rank)
    return WeightSpace.from_flat(torch.where(drop, torch.zeros_like(flat), flat), ws.spec)


# ------------------------------------------------------------------ exact symmetries
def _check_hidden_list(ws: WeightSpace, items, name: str, dtype_ok) -> List[Tensor]:
    sizes = ws.spec.hidden_sizes
    if items is None or len(items) != len(sizes):
        raise SslWsError(f"{name} must be a list of {len(sizes)} tensors, one per hidden layer of sizes {list(sizes)}")
    out = []
    for i, (t, h) in enumerate(zip(items, sizes)):
        t = torch.as_tensor(t, device=ws.device)
        if t.dim() == 1:
            t = t.expand(len(ws), h)
        if tuple(t.shape) != (len(ws), h):
            raise SslWsError(f"{name}[{i}] must be [{len(ws)}, {h}], got {tuple(t.shape)}")
        if not dtype_ok(t):
            raise SslWsError(f"{name}[{i}] has the wrong dtype {t.dtype}")
        out.append(t)
    return out


def permute(ws: WeightSpace, perms: Sequence[Tensor]) -> WeightSpace:
    """Reorder hidden neurons: new neuron ``j`` of hidden layer ``i`` is old neuron ``perms[i][b, j]``.

    ``W_i' = P_i W_i P_{i-1}^T``, ``b_i' = P_i b_i``; the function is unchanged for any
    elementwise activation. ``perms``: one LongTensor ``[B, h_i]`` per hidden layer.
    """
    _check_ws(ws)
    perms = _check_hidden_list(ws, perms, "perms", lambda t: not t.is_floating_point())
    perms = [p.long() for p in perms]
    weights, biases = list(ws.weights), list(ws.biases)
    for i, p in enumerate(perms):
        weights[i] = gather_rows(weights[i], p)
        biases[i] = biases[i].gather(1, p)
        weights[i + 1] = gather_cols(weights[i + 1], p)
    return ws.replace(weights=weights, biases=biases)


def require_odd(ws: WeightSpace, what: str) -> None:
    """Refuse ``what`` (a symmetry of odd activations) for INRs whose activation is not sine."""
    if ws.spec.activation != "sine":
        raise SslWsError(f"{what} is a symmetry of sine INRs only; these use {ws.spec.activation!r}")


def sign_flip(ws: WeightSpace, signs: Sequence[Tensor], check: bool = True) -> WeightSpace:
    """Flip hidden neurons of an odd activation: ``W_i' = S_i W_i S_{i-1}``, ``b_i' = S_i b_i``.

    ``signs``: one ``+-1`` tensor ``[B, h_i]`` per hidden layer. Exact for ``sin``
    (odd); refused for other activations.
    ``check=False`` skips reading the values to validate them (a device sync on a GPU): what the
    transforms pass for parameters drawn valid by construction.
    """
    _check_ws(ws)
    require_odd(ws, "sign flip")
    signs = _check_hidden_list(ws, signs, "signs", lambda t: True)
    weights, biases = list(ws.weights), list(ws.biases)
    for i, s in enumerate(signs):
        s = s.to(ws.dtype)
        if check and not bool((s.abs() == 1).all()):
            raise SslWsError(f"signs[{i}] must contain only +1 and -1")
        weights[i] = weights[i] * s.unsqueeze(-1)
        biases[i] = biases[i] * s
        weights[i + 1] = weights[i + 1] * s.unsqueeze(1)
    return ws.replace(weights=weights, biases=biases)


def bias_shift(ws: WeightSpace, k: Sequence[Tensor], check: bool = True) -> WeightSpace:
    """SIREN bias shift: ``b_i' = b_i + k pi / w0``, outgoing columns times ``(-1)^k``.

    ``k``: one integer tensor ``[B, h_i]`` per hidden layer. Exact because
    ``sin(w0 (z + k pi / w0)) = (-1)^k sin(w0 z)``; refused for non-sine INRs.
    ``check=False`` skips reading the values to validate them (a device sync on a GPU): what the
    transforms pass for parameters drawn valid by construction.
    """
    _check_ws(ws)
    require_odd(ws, "bias shift by k*pi/w0")
    ks = _check_hidden_list(ws, k, "k", lambda t: not t.is_floating_point() or not check or bool((t == t.round()).all()))
    w0 = ws.spec.w0
    weights, biases = list(ws.weights), list(ws.biases)
    for i, kk in enumerate(ks):
        kk = kk.long()
        biases[i] = biases[i] + kk.to(ws.dtype) * (math.pi / w0)
        sign = 1.0 - 2.0 * (kk.remainder(2)).to(ws.dtype)
        weights[i + 1] = weights[i + 1] * sign.unsqueeze(1)
    return ws.replace(weights=weights, biases=biases)


# ---------------------------------------------------------------------------- MixUp
def mixup(a: WeightSpace, b: WeightSpace, lam) -> WeightSpace:
    """``lam a + (1 - lam) b`` per INR (``lam: [B]``); no alignment (see :func:`align`)."""
    _check_ws(a)
    _check_ws(b)
    _check_same_spec(a.spec, b.spec, "mixup")
    if len(a) != len(b):
        raise SslWsError(f"mixup needs batches of one size, got {len(a)} and {len(b)}")
    if a.device != b.device:
        raise SslWsError(f"mixup needs both batches on one device, got {a.device} and {b.device}")
    lm = _param(lam, a, "lam")

    def mix(x: Tensor, y: Tensor) -> Tensor:
        l = _per_inr(lm, x)
        return l * x + (1.0 - l) * y

    return WeightSpace(
        [mix(x, y) for x, y in zip(a.weights, b.weights)],
        [mix(x, y) for x, y in zip(a.biases, b.biases)],
        a.spec,
    )


def align(
    anchor: WeightSpace, partner: WeightSpace, max_iter: int = 100, return_perms: bool = False
) -> Union[WeightSpace, Tuple[WeightSpace, List[Tensor]]]:
    """``partner`` with its hidden neurons permuted to match ``anchor`` (weight matching).

    The result computes exactly the same functions as ``partner``. With
    ``return_perms`` also returns the permutations (see
    :func:`ssl_ws.augment.align.weight_matching`).
    """
    perms = weight_matching(anchor, partner, max_iter=max_iter)
    aligned = permute(partner, perms)
    return (aligned, perms) if return_perms else aligned
