r"""Neuron-token transformer: the INR as a graph of neurons, attention over its nodes.

Simplified from Kofinas, Knyazev, Zhang, Chen, Burghouts, Gavves, Snoek, Zhang, "Graph Neural
Networks for Learning Equivariant Representations of Neural Networks", ICLR 2024. One token per
neuron, built from its bias and its incoming and outgoing weights:

    h_v^0 = e_{layer(v)} + [pos_v if v is an input/output neuron] + u * b_v
    h_v   = h_v^0 + A_in ( mean_{u -> v} relu(w_uv a + c) ) + (1/sqrt(d)) \sum_{u -> v} w_uv (h_u^0 V_in)
                  + A_out( mean_{v -> u} relu(w_vu a' + c') ) + (1/sqrt(d)) \sum_{v -> u} w_vu (h_u^0 V_out)

(``e_k`` a learned layer embedding; ``pos_v`` a learned identity for the non-permuted input and
output neurons). A transformer encoder without positional encodings attends over all tokens;
the tokens are pooled (mean, max or learned-query attention) and mapped linearly, so the
embedding is invariant to hidden-neuron permutations. Unlike the paper, weights enter only
through these token features, not as edge features in every attention layer.
"""

from __future__ import annotations

import math
from typing import Mapping, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import SslWsError
from ..weights import INRSpec, WeightSpace
from .base import WeightSpaceEncoder, _boolean, _choice, _positive, _probability
from .probes import PROBE_COORDS, ProbeFeatures

POOLINGS = ("mean", "max", "attention")


class NeuralGraphTransformer(WeightSpaceEncoder):
    """Transformer over neuron tokens (Kofinas et al. 2024, simplified).

    Args:
        spec: the INR architecture.
        hidden: token width ``D``.
        n_layers: transformer encoder layers.
        out_dim: embedding size.
        num_heads: attention heads (must divide ``hidden``).
        edge_features: width of the learned per-weight features pooled into each token.
        pooling: pooling over tokens: ``"mean"``, ``"max"`` or ``"attention"``.
        dropout: dropout in the transformer layers.
        probes: number of probe coordinates ``P`` (0 = none): every neuron's activations at
            the probes (:mod:`ssl_ws.models.probes`, from the raw weights; the input neurons'
            are the coordinates themselves) enter its token through a linear map ``P -> D``,
            as the probe features of Kofinas et al. (2024).
        probe_coords: ``"grid"`` (fixed) or ``"learned"`` probe coordinates.
        canonical: embed the canonical form of the weights under SIREN sign flips and bias
            shifts / ReLU positive scaling (:mod:`ssl_ws.models.canonical`).
    """

    name = "neural_graph"
    description = "neuron-token transformer (Kofinas et al. 2024, simplified): bias + in/out weights per neuron"
    invariant = True
    min_layers = 2

    def __init__(
        self,
        spec: Union[INRSpec, Mapping],
        hidden: int = 64,
        n_layers: int = 2,
        out_dim: int = 64,
        num_heads: int = 4,
        edge_features: int = 16,
        pooling: str = "mean",
        dropout: float = 0.0,
        probes: int = 0,
        probe_coords: str = "grid",
        canonical: bool = False,
    ):
        super().__init__(spec, out_dim)
        for key, val in dict(hidden=hidden, n_layers=n_layers, num_heads=num_heads, edge_features=edge_features).items():
            _positive(key, val)
        _choice("pooling", pooling, POOLINGS)
        _probability("dropout", dropout)
        _positive("probes", probes, allow_zero=True)
        _choice("probe_coords", probe_coords, PROBE_COORDS)
        _boolean("canonical", canonical)
        if hidden % num_heads:
            raise SslWsError(f"num_heads ({num_heads}) must divide hidden ({hidden})")
        self._record(hidden=hidden, n_layers=n_layers, out_dim=out_dim, num_heads=num_heads,
                     edge_features=edge_features, pooling=pooling, dropout=float(dropout), probes=probes,
                     probe_coords=probe_coords, canonical=canonical)
        self.canonical = canonical
        self.probes = ProbeFeatures(self.spec, probes, probe_coords) if probes else None
        self.uses_raw_weights = bool(probes)
        sizes = self.spec.layer_sizes
        L = self.spec.n_layers
        D, E = hidden, edge_features
        self.layer_emb = nn.Parameter(torch.randn(L + 1, D) * 0.1)
        self.pos_in = nn.Parameter(torch.randn(sizes[0], D) * 0.1)
        self.pos_out = nn.Parameter(torch.randn(sizes[-1], D) * 0.1)
        self.bias_proj = nn.Parameter(torch.randn(D) * 0.1)
        # per-weight features (separately for incoming and outgoing edges), pooled per neuron
        self.edge_in = nn.Linear(1, E)
        self.edge_out = nn.Linear(1, E)
        self.edge_in_proj = nn.Linear(E, D, bias=False)
        self.edge_out_proj = nn.Linear(E, D, bias=False)
        # weighted sums of the neighbours' initial tokens
        self.nbr_in = nn.Linear(D, D, bias=False)
        self.nbr_out = nn.Linear(D, D, bias=False)
        layer = nn.TransformerEncoderLayer(D, num_heads, dim_feedforward=2 * D, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, n_layers, norm=nn.LayerNorm(D), enable_nested_tensor=False)
        if pooling == "attention":
            self.pool_query = nn.Parameter(torch.zeros(D))
        self.out = nn.Linear(D, out_dim)
        if probes:
            self.probe_proj = nn.Linear(probes, D, bias=False)

    def tokens(self, ws: WeightSpace, raw: WeightSpace = None) -> Tensor:
        """``[B, sum(layer_sizes), D]``: one token per neuron, layer by layer."""
        bsz = len(ws)
        L = self.spec.n_layers
        init = [self.pos_in.expand(bsz, -1, -1) + self.layer_emb[0]]
        for k in range(1, L + 1):
            t = ws.biases[k - 1].unsqueeze(-1) * self.bias_proj + self.layer_emb[k]
            if k == L:
                t = t + self.pos_out
            init.append(t)
        if self.probes is not None:  # [B, d_k, P] per layer; the input neurons' values are the coordinates
            feats = [self.probes.coords.T.to(ws.dtype).expand(bsz, -1, -1)] + self.probes(raw)
            init = [t + self.probe_proj(f) for t, f in zip(init, feats)]
        toks = list(init)
        for j, w in enumerate(ws.weights):  # w: [B, d_{j+1} (targets), d_j (sources)]
            e = w.unsqueeze(-1)
            toks[j + 1] = toks[j + 1] + self.edge_in_proj(F.relu(self.edge_in(e)).mean(2))
            toks[j] = toks[j] + self.edge_out_proj(F.relu(self.edge_out(e)).mean(1))
            toks[j + 1] = toks[j + 1] + (w @ self.nbr_in(init[j])) / math.sqrt(w.shape[2])
            toks[j] = toks[j] + (w.transpose(1, 2) @ self.nbr_out(init[j + 1])) / math.sqrt(w.shape[1])
        return torch.cat(toks, dim=1)

    def encode(self, ws: WeightSpace, raw: WeightSpace = None) -> Tensor:
        h = self.transformer(self.tokens(ws, raw))
        how = self._hparams["pooling"]
        if how == "mean":
            z = h.mean(1)
        elif how == "max":
            z = h.max(1).values
        else:
            z = (torch.softmax(h @ self.pool_query, dim=1).unsqueeze(-1) * h).sum(1)
        return self.out(z)
