"""Flat MLP over the parameter vector: the baseline that ignores weight-space symmetry.

``z = MLP(to_flat(ws))`` with the parameters in PyTorch order. Two INRs that differ
only by a permutation of hidden neurons compute the same function but have different
flat vectors, so this encoder is *not* invariant (Navon et al., ICML 2023, and
Shamsian et al., ICML 2024, use it as the failure case that motivates equivariant
architectures and permutation augmentations).
"""

from __future__ import annotations

from typing import Mapping, Union

from torch import Tensor, nn

from ..weights import INRSpec, WeightSpace
from .base import WeightSpaceEncoder, _choice, _positive, _probability


class FlatMLP(WeightSpaceEncoder):
    """``n_layers`` linear layers over the flat parameter vector (ReLU between them).

    Args:
        spec: the INR architecture.
        hidden: width of the hidden layers.
        n_layers: number of linear layers (the last one maps to ``out_dim``).
        out_dim: embedding size.
        norm: ``"none"``, ``"batch"`` or ``"layer"`` after every hidden linear layer.
        dropout: dropout after every hidden layer.
    """

    name = "mlp"
    description = "flat MLP over the parameter vector (not permutation invariant: the classic baseline)"
    invariant = False
    min_layers = 1

    def __init__(
        self,
        spec: Union[INRSpec, Mapping],
        hidden: int = 256,
        n_layers: int = 3,
        out_dim: int = 64,
        norm: str = "batch",
        dropout: float = 0.0,
    ):
        super().__init__(spec, out_dim)
        _positive("hidden", hidden)
        _positive("n_layers", n_layers)
        _choice("norm", norm, ("none", "batch", "layer"))
        _probability("dropout", dropout)
        self._record(hidden=hidden, n_layers=n_layers, out_dim=out_dim, norm=norm, dropout=float(dropout))
        layers, d = [], self.spec.n_params
        for _ in range(n_layers - 1):
            layers.append(nn.Linear(d, hidden))
            if norm == "batch":
                layers.append(nn.BatchNorm1d(hidden))
            elif norm == "layer":
                layers.append(nn.LayerNorm(hidden))
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
            d = hidden
        layers.append(nn.Linear(d, out_dim))
        self.net = nn.Sequential(*layers)

    def encode(self, ws: WeightSpace) -> Tensor:
        return self.net(ws.to_flat())
