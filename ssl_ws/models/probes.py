r"""Probe features: what every neuron of an INR computes at a few input coordinates.

An INR can always be *evaluated*, and its values do not depend on which of the many
equivalent weight vectors represents it. Probe features (Kofinas et al., "Graph
Neural Networks for Learning Equivariant Representations of Neural Networks", ICLR
2024, their "probe features"; the augmentation paper's code has them as
``probe_features.py``) feed that functional view to a weight-space encoder as node
features. For ``P`` probe coordinates ``x_1 .. x_P`` and the INR

    h_0 = x,   h_k = act(w0 (W_{k-1} h_{k-1} + b_{k-1}))  (0 < k < L),   h_L = W_{L-1} h_{L-1} + b_{L-1}

the feature of neuron ``n`` of layer ``k`` is the vector ``(h_k(x_1)[n], .., h_k(x_P)[n])``:
``[B, d_k, P]`` per layer, the last layer's being the INR's (offset-free) output at the
probes. Permuting the hidden neurons of layer ``k`` permutes the rows of ``h_k`` in the
same way and leaves the other layers unchanged, so the features are *equivariant*
exactly where the weights are: an encoder that is invariant to neuron permutations
stays invariant with them. They are computed from the **raw** weights (the INR's own
function), not from the normalized ones the encoder sees.

Coordinates (``coords``): ``"grid"`` -- a ``sqrt(P) x sqrt(P)`` pixel-centre grid of
``[-1, 1]^2`` when ``P`` is a square (for 2-D INRs), else ``P`` points drawn once
``U(-1, 1)^{d_in}`` from a fixed seed; ``"learned"`` -- the same start, trained with the
encoder (Kofinas et al. learn theirs too).
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
