"""StatNet: per-layer statistics of the weights and biases, then an MLP.

Unterthiner, Nguyen, Gelly, Tolstikhin, "Predicting Neural Network Accuracy from
Weights", 2020. For every weight matrix and bias vector the features are its mean,
variance and the quantiles ``q in (0, .25, .5, .75, 1)`` over all its entries (7
numbers per tensor, ``14 L`` in all). Statistics of a whole tensor do not depend on
the order of its entries, so the embedding is exactly invariant to hidden-neuron
permutations, and cheap; it cannot see structure beyond these marginals.
"""

from __future__ import annotations

from typing import Mapping, Union

import torch
from torch import Tensor, nn

from ..weights import INRSpec, WeightSpace
from .base import WeightSpaceEncoder, _positive, _probability, mlp

QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)


def layer_statistics(ws: WeightSpace) -> Tensor:
    """``[B, 14 L]``: mean, variance and 5 quantiles of every ``W_j`` then every ``b_j``."""
    feats = []
    for t in list(ws.weights) + list(ws.biases):
        flat = t.flatten(1)
        q = torch.quantile(flat, torch.tensor(QUANTILES, dtype=flat.dtype, device=flat.device), dim=1).T
        var = flat.var(dim=1, unbiased=False)
        feats.append(torch.cat([flat.mean(1, keepdim=True), var.unsqueeze(1), q], dim=1))
    return torch.cat(feats, dim=1)


class StatNet(WeightSpaceEncoder):
    """Statistics features -> (standardized by a BatchNorm) -> MLP.

    Args:
        spec: the INR architecture.
        hidden: width of the MLP's hidden layers.
        n_layers: linear layers in the MLP.
        out_dim: embedding size.
        dropout: dropout in the MLP.
    """

    name = "statnet"
    description = "StatNet (Unterthiner et al. 2020): per-layer moments and quantiles -> MLP"
    invariant = True
    min_layers = 1

    def __init__(self, spec: Union[INRSpec, Mapping], hidden: int = 256, n_layers: int = 3, out_dim: int = 64,
                 dropout: float = 0.0):
        super().__init__(spec, out_dim)
        _positive("hidden", hidden)
        _positive("n_layers", n_layers)
        _probability("dropout", dropout)
        self._record(hidden=hidden, n_layers=n_layers, out_dim=out_dim, dropout=float(dropout))
        n_feats = 2 * self.spec.n_layers * (2 + len(QUANTILES))
        # the statistics live on very different scales (variances ~ 1e-4, quantiles ~ 1e-1)
        self.input_norm = nn.BatchNorm1d(n_feats)
        self.net = mlp(n_feats, hidden, out_dim, n_layers, dropout)

    def encode(self, ws: WeightSpace) -> Tensor:
        return self.net(self.input_norm(layer_statistics(ws)))
