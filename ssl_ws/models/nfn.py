"""NFN: neural functional network with NP layers (the neuron-permutation baseline).

Zhou, Yang, Burns, Cao, Jiang, Levine, Finn, "Permutation Equivariant Neural
Functionals", NeurIPS 2023. An NP layer treats *every* neuron layer, the input and
output layers included, as a permutable set::

    W'_j[p, q] = a_j W_j[p, q] + (row terms on n_{j+1}: W_j[p,*], b_j[p], W_{j+1}[*,p])
                 + (column terms on n_j: W_j[*,q], b_{j-1}[q], W_{j-1}[q,*])
                 + (all terms: W_i[*,*], b_i[*] for every i) + bias
    b'_j[p]    = (terms on n_{j+1}) + (all terms) + bias

(``*`` = mean pooling). It is the layer of :mod:`~ssl_ws.models.dws_layers` with
``fixed_io=False``. Since the input and output neurons of an INR are not really
interchangeable, learned positional embeddings are added on the input axis of
``W_0`` and the output axis of ``W_{L-1}`` and ``b_{L-1}`` after the first layer (the
paper's NP models do the same), so the network can tell them apart while remaining
exactly invariant to the hidden-neuron permutations. Head: every tensor mean-pooled
over all its axes, then an MLP.
"""

from __future__ import annotations

from typing import Mapping, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..weights import INRSpec, WeightSpace
from .base import WeightSpaceEncoder, _choice, _positive, _probability, mlp
from .dws_layers import (
    HEAD_POOLINGS,
    LAYER_POOLINGS,
    NORMS,
    EquivariantLayer,
    InvariantPool,
    TensorNorm,
    WeightSpaceLayout,
    lift,
    map_tensors,
)


class NFN(WeightSpaceEncoder):
    """NP-layer network with input/output positional embeddings and an invariant head.

    Args:
        spec: the INR architecture.
        hidden: channels per weight/bias entry.
        n_layers: number of NP layers.
        out_dim: embedding size.
        pooling: head pooling (``"mean"``, ``"max"``, ``"attention"``).
        layer_pooling: pooling inside the NP layers (``"mean"`` as in the paper).
        norm, dropout: as for :class:`~ssl_ws.models.dwsnet.DWSNet`.
        head_layers, head_hidden: the MLP head.
    """

    name = "nfn"
    description = "NFN (Zhou et al. 2023): NP equivariant layers + input/output position embeddings"
    invariant = True
    min_layers = 2

    def __init__(
        self,
        spec: Union[INRSpec, Mapping],
        hidden: int = 32,
        n_layers: int = 3,
        out_dim: int = 64,
        pooling: str = "mean",
        layer_pooling: str = "mean",
        norm: str = "batch",
        dropout: float = 0.0,
        head_layers: int = 2,
        head_hidden: int = 256,
    ):
        super().__init__(spec, out_dim)
        for key, val in dict(hidden=hidden, n_layers=n_layers, head_layers=head_layers, head_hidden=head_hidden).items():
            _positive(key, val)
        _choice("pooling", pooling, HEAD_POOLINGS)
        _choice("layer_pooling", layer_pooling, LAYER_POOLINGS)
        _choice("norm", norm, NORMS)
        _probability("dropout", dropout)
        self._record(hidden=hidden, n_layers=n_layers, out_dim=out_dim, pooling=pooling, layer_pooling=layer_pooling,
                     norm=norm, dropout=float(dropout), head_layers=head_layers, head_hidden=head_hidden)
        sizes = self.spec.layer_sizes
        self.dropout = float(dropout)
        layout = WeightSpaceLayout(sizes, hidden, fixed_io=False)
        self.layers = nn.ModuleList(
            EquivariantLayer(sizes, 1 if i == 0 else hidden, hidden, fixed_io=False, set_layer="deepsets",
                             pooling=layer_pooling)
            for i in range(n_layers)
        )
        self.norms = nn.ModuleList(TensorNorm(norm, layout) if norm != "none" else nn.Identity() for _ in range(n_layers))
        self.pos_in = nn.Parameter(torch.randn(sizes[0], hidden) * 0.1)  # on W_0's input axis
        self.pos_out_w = nn.Parameter(torch.randn(sizes[-1], hidden) * 0.1)  # on W_{L-1}'s output axis
        self.pos_out_b = nn.Parameter(torch.randn(sizes[-1], hidden) * 0.1)  # on b_{L-1}
        self.pool = InvariantPool(layout, pooling)
        self.head = mlp(self.pool.out_dim, head_hidden, out_dim, head_layers, dropout)

    def encode(self, ws: WeightSpace) -> Tensor:
        x = lift(ws, fixed_io=False)
        for i, (layer, norm) in enumerate(zip(self.layers, self.norms)):
            x = norm(layer(x))
            if i == 0:
                weights, biases = list(x[0]), list(x[1])
                weights[0] = weights[0] + self.pos_in[None, None, :, :]
                weights[-1] = weights[-1] + self.pos_out_w[None, :, None, :]
                biases[-1] = biases[-1] + self.pos_out_b[None]
                x = (weights, biases)
            x = map_tensors(F.relu, x)
            if self.dropout and self.training:
                x = map_tensors(lambda t: F.dropout(t, self.dropout, True), x)
        return self.head(self.pool(x))
