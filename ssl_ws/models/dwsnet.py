"""DWSNet: a stack of fused DWS layers and an invariant pooling head.

Navon, Shamsian, Achituve, Fetaya, Chechik, Maron, "Equivariant Architectures for
Learning in Deep Weight Spaces", ICML 2023:

    (W, b) --lift/fold--> [DWS layer -> norm -> ReLU -> dropout] x n_layers
           --pool over the hidden-neuron axes--> MLP head --> z in R^out_dim

Every layer (:class:`~ssl_ws.models.dws_layers.EquivariantLayer`) is equivariant to
hidden-neuron permutations and the head pools over exactly those axes, so ``z`` is invariant
to them up to float rounding; input and output neurons are folded into channels. Defaults: the
small DWSNet of Shamsian et al., ICML 2024 (16 channels, 3 layers, set attention, max pooling,
BatchNorm). Unlike the DWSNets code, the pooled (global) terms of every block are kept and one
attention block runs per hidden-neuron set.
"""

from __future__ import annotations

from typing import Mapping, Union

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import SslWsError
from ..weights import INRSpec, WeightSpace
from .base import WeightSpaceEncoder, _boolean, _choice, _positive, _probability, mlp
from .probes import PROBE_COORDS, ProbeFeatures
from .dws_layers import (
    HEAD_POOLINGS,
    LAYER_POOLINGS,
    NORMS,
    SET_LAYERS,
    EquivariantLayer,
    InvariantPool,
    TensorNorm,
    WeightSpaceLayout,
    lift,
    map_tensors,
)


class DWSNet(WeightSpaceEncoder):
    """Deep-weight-space network: hidden-neuron-permutation-invariant embeddings.

    Args:
        spec: the INR architecture (two linear layers or more).
        hidden, n_layers, out_dim: channels per entry, equivariant layers, embedding size.
        set_layer: ``"sab"`` (set attention per hidden-neuron set, ``num_heads`` dividing
            ``hidden``) or ``"deepsets"`` (linear node maps).
        pooling: head pooling, ``"max"``, ``"mean"`` or ``"attention"``; ``layer_pooling``: inside
            the layers, ``"max"``, ``"mean"`` or ``"sum"`` (default ``pooling``, ``"mean"`` for attention).
        norm: ``"batch"`` (default), ``"layer"`` or ``"none"`` after every equivariant layer.
        dropout: dropout probability after every equivariant layer and in the head.
        head_layers, head_hidden: linear layers of the head (1 = linear readout) and their width.
        probes: ``P`` probe coordinates (0 = none; ``probe_coords`` ``"grid"`` or ``"learned"``);
            each neuron's activations there (:mod:`ssl_ws.models.probes`) are ``P`` extra bias channels.
        probe_embed: width ``E`` of a per-layer MLP ``P -> E -> E`` (ReLU, shared by the layer's
            neurons) applied to the probe features before the first layer (0 = none).
        canonical: canonicalize the weights first (:mod:`ssl_ws.models.canonical`), making ``z``
            invariant to the sign / bias-shift (SIREN) or positive-scale (ReLU) symmetries too.
    """

    name = "dwsnet"
    description = "DWSNet (Navon et al. 2023): fused equivariant weight/bias layers + invariant pooling head"
    invariant = True
    min_layers = 2

    def __init__(
        self,
        spec: Union[INRSpec, Mapping],
        hidden: int = 16,
        n_layers: int = 3,
        out_dim: int = 64,
        set_layer: str = "sab",
        num_heads: int = 8,
        pooling: str = "max",
        layer_pooling: Union[str, None] = None,
        norm: str = "batch",
        dropout: float = 0.0,
        head_layers: int = 1,
        head_hidden: int = 256,
        probes: int = 0,
        probe_coords: str = "grid",
        canonical: bool = False,
        probe_embed: int = 0,
    ):
        super().__init__(spec, out_dim)
        _positive("hidden", hidden)
        _positive("n_layers", n_layers)
        _positive("head_layers", head_layers)
        _positive("head_hidden", head_hidden)
        _positive("num_heads", num_heads)
        _choice("set_layer", set_layer, SET_LAYERS)
        _choice("pooling", pooling, HEAD_POOLINGS)
        if layer_pooling is None:
            layer_pooling = pooling if pooling in LAYER_POOLINGS else "mean"
        _choice("layer_pooling", layer_pooling, LAYER_POOLINGS)
        _choice("norm", norm, NORMS)
        _probability("dropout", dropout)
        _positive("probes", probes, allow_zero=True)
        _choice("probe_coords", probe_coords, PROBE_COORDS)
        _boolean("canonical", canonical)
        _positive("probe_embed", probe_embed, allow_zero=True)
        if probe_embed and not probes:
            raise SslWsError("encoder.probe_embed embeds probe features: it needs encoder.probes > 0")
        if set_layer == "sab" and hidden % num_heads:
            raise SslWsError(f"num_heads ({num_heads}) must divide hidden ({hidden}) for set_layer='sab'")
        self._record(
            hidden=hidden, n_layers=n_layers, out_dim=out_dim, set_layer=set_layer, num_heads=num_heads,
            pooling=pooling, layer_pooling=layer_pooling, norm=norm, dropout=float(dropout),
            head_layers=head_layers, head_hidden=head_hidden, probes=probes, probe_coords=probe_coords,
            canonical=canonical, probe_embed=probe_embed,
        )
        self.canonical = canonical
        self.probes = ProbeFeatures(self.spec, probes, probe_coords) if probes else None
        self.uses_raw_weights = bool(probes)
        self.probe_embed = nn.ModuleList(
            nn.Sequential(nn.Linear(probes, probe_embed), nn.ReLU(), nn.Linear(probe_embed, probe_embed))
            for _ in range(self.spec.n_layers)
        ) if probe_embed else None
        sizes = self.spec.layer_sizes
        self.dropout = float(dropout)
        self.layers = nn.ModuleList()
        self.norms = nn.ModuleList()
        channels, bias_channels = 1, 1 + (probe_embed or probes)
        for _ in range(n_layers):
            self.layers.append(
                EquivariantLayer(sizes, channels, hidden, fixed_io=True, set_layer=set_layer,
                                 pooling=layer_pooling, num_heads=num_heads, in_bias_channels=bias_channels)
            )
            bias_channels = hidden
            channels = hidden
            layout = WeightSpaceLayout(sizes, hidden, fixed_io=True)
            self.norms.append(TensorNorm(norm, layout) if norm != "none" else nn.Identity())
        self.pool = InvariantPool(WeightSpaceLayout(sizes, hidden, fixed_io=True), pooling)
        self.head = mlp(self.pool.out_dim, head_hidden, out_dim, head_layers, dropout)

    def equivariant_features(self, ws: WeightSpace, raw: WeightSpace = None):
        """The output of the last equivariant layer: (weights, biases), channels last, folded."""
        feats = self.probes(raw) if self.probes is not None else None
        if self.probe_embed is not None:
            feats = [embed(f) for embed, f in zip(self.probe_embed, feats)]
        x = lift(ws, fixed_io=True, bias_features=feats)
        for layer, norm in zip(self.layers, self.norms):
            x = norm(layer(x))
            x = map_tensors(F.relu, x)
            if self.dropout and self.training:
                x = map_tensors(lambda t: F.dropout(t, self.dropout, True), x)
        return x

    def encode(self, ws: WeightSpace, raw: WeightSpace = None) -> Tensor:
        return self.head(self.pool(self.equivariant_features(ws, raw)))
