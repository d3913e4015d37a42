r"""Probe features: what every neuron of an INR computes at a few input coordinates.

Kofinas et al., "Graph Neural Networks for Learning Equivariant Representations of Neural
Networks", ICLR 2024. For ``P`` probe coordinates ``x_1 .. x_P`` and the INR

    h_0 = x,   h_k = act(w0 (W_{k-1} h_{k-1} + b_{k-1}))  (0 < k < L),   h_L = W_{L-1} h_{L-1} + b_{L-1}

the feature of neuron ``n`` of layer ``k`` is ``(h_k(x_1)[n], .., h_k(x_P)[n])``: ``[B, d_k, P]``
per layer, the last being the INR's offset-free output. A hidden-neuron permutation permutes the
rows of ``h_k`` alike, so the features are equivariant exactly where the weights are. Computed
from the **raw** weights (the INR's own function), not the normalized ones.

``coords``: ``"grid"`` -- a ``sqrt(P) x sqrt(P)`` pixel-centre grid of ``[-1, 1]^2`` when ``P``
is a square (2-D INRs), else ``P`` points ``U(-1, 1)^{d_in}`` from a fixed seed; ``"learned"``
-- the same start, trained with the encoder.
"""

from __future__ import annotations

import math
from typing import List

import torch
from torch import Tensor, nn

from ..inr.render import image_coordinates, render_layers
from ..weights import INRSpec, WeightSpace

PROBE_COORDS = ("grid", "learned")


def initial_probe_coordinates(spec: INRSpec, n_probes: int, seed: int = 0) -> Tensor:
    """``[P, d_in]`` starting probe coordinates in ``[-1, 1]`` (see module docstring)."""
    side = math.isqrt(n_probes)
    if spec.in_dim == 2 and side * side == n_probes:
        return image_coordinates(side, side)
    g = torch.Generator().manual_seed(int(seed))
    return torch.rand(n_probes, spec.in_dim, generator=g) * 2 - 1


class ProbeFeatures(nn.Module):
    """``raw WeightSpace [B] -> [h_1^T, .., h_L^T]``, each ``[B, d_k, P]`` (module docstring)."""

    def __init__(self, spec: INRSpec, n_probes: int, coords: str = "grid", seed: int = 0):
        super().__init__()
        self.spec = spec
        self.n_probes = int(n_probes)
        start = initial_probe_coordinates(spec, self.n_probes, seed)
        if coords == "learned":
            self.coords = nn.Parameter(start)
        else:
            self.register_buffer("coords", start)

    def forward(self, raw: WeightSpace) -> List[Tensor]:
        return [h.transpose(1, 2) for h in render_layers(raw, self.coords)]
