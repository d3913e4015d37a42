"""Canonical forms of INR weights under the neuron-wise symmetries beyond permutations.

Per hidden neuron ``i`` of layer ``k`` (row ``W_k[i, :]``, bias ``b_k[i]``, column ``W_{k+1}[:, i]``):
**sign** (``sin``): all three negated, as ``-sin(-z) = sin(z)``; **bias shift** (``sin(w0 z)``):
``b_k[i] + pi / w0``, column negated (:func:`~ssl_ws.augment.functional.bias_shift`); **positive
scale** (ReLU): row and bias divided by ``c > 0``, column times ``c``. Sign and scale are the
symmetries of ScaleGMN (Kalogeropoulos, Bouritsas & Panagakis, "Scale Equivariant Graph
Metanetworks", NeurIPS 2024). :func:`canonicalize` maps each INR to one representative of its
orbit (Kaba et al., "Equivariance with Learned Canonicalization Functions", ICML 2023), per neuron:

* ``sin``: shift the bias by ``-k pi / w0``, ``k = round(w0 b / pi)``, then flip the sign so the
  bias is ``>= 0`` (a zero bias takes the sign of the incoming weights' sum): ``b in [0, pi / (2 w0)]``;
* ReLU: divide row and bias by ``c = ||(W_k[i], b_k[i])||_2``, column times ``c`` (``c = 0`` left alone).

Each neuron's form depends on its own parameters only, so ``canonicalize(permute(ws)) ==
permute(canonicalize(ws))`` and ``f_theta`` is unchanged: a permutation-invariant encoder on
canonical weights is invariant to all these symmetries, up to measure-zero ties.
"""

from __future__ import annotations

import math

import torch

from ..augment.functional import bias_shift, sign_flip
from ..errors import SslWsError
from ..weights import WeightSpace

__all__ = ["canonicalize"]


def canonicalize(ws: WeightSpace) -> WeightSpace:
    """The canonical representative of every INR of ``ws`` (see the module doc): sign and bias
    shift for ``sin`` INRs, positive scale for ReLU INRs."""
    if not isinstance(ws, WeightSpace):
        raise SslWsError(f"canonicalize takes a WeightSpace, got {type(ws).__name__}")
    if ws.spec.n_layers < 2:
        return ws
    if ws.spec.activation == "sine":
        return _canonical_sine(ws)
    if ws.spec.activation == "relu":
        return _canonical_relu(ws)
    raise SslWsError(f"no canonical form for activation {ws.spec.activation!r}")


def _canonical_sine(ws: WeightSpace) -> WeightSpace:
    half_period = math.pi / ws.spec.w0
    hidden = range(ws.spec.n_layers - 1)
    k = [torch.round(ws.biases[i] / half_period).long() for i in hidden]
    ws = bias_shift(ws, [-kk for kk in k])
    signs = []
    for i in hidden:
        b = ws.biases[i]
        tie = torch.sign(ws.weights[i].sum(-1))
        s = torch.where(b != 0, torch.sign(b), tie)
        signs.append(torch.where(s == 0, torch.ones_like(s), s))
    return sign_flip(ws, signs)


def _canonical_relu(ws: WeightSpace) -> WeightSpace:
    weights, biases = list(ws.weights), list(ws.biases)
    for i in range(ws.spec.n_layers - 1):
        c = torch.sqrt(weights[i].square().sum(-1) + biases[i].square())  # [B, h_i]
        c = torch.where(c > 0, c, torch.ones_like(c))
        weights[i] = weights[i] / c.unsqueeze(-1)
        biases[i] = biases[i] / c
        weights[i + 1] = weights[i + 1] * c.unsqueeze(1)
    return ws.replace(weights=weights, biases=biases)
