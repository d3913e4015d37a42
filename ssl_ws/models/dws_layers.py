r"""Permutation-equivariant layers on deep weight spaces, all blocks in one fused layer.

Notation. An MLP with ``L`` linear layers has neuron layers ``n_0 .. n_L`` of sizes ``d_0 ..
d_L`` and parameters ``W_j \in R^{d_{j+1} x d_j}`` (row ``p`` in ``n_{j+1}``, column ``q`` in
``n_j``), ``b_j \in R^{d_{j+1}}``, each entry with ``C`` channels. Permuting hidden layer ``k``
(``0 < k < L``) by ``P`` maps ``W_{k-1} -> P W_{k-1}``, ``b_{k-1} -> P b_{k-1}``,
``W_k -> W_k P^T``; ``n_0`` and ``n_L`` are not permuted.

**DWS layer** (Navon et al., "Equivariant Architectures for Learning in Deep Weight Spaces",
ICML 2023): the equivariant linear maps are sums of blocks ``W->W``, ``b->b``, ``W->b``,
``b->W`` for every pair of layers, each pooling over the input axes the output lacks, mixing
channels, and broadcasting. All blocks are computed at once, grouped by the axis they live on:

1. Fixed axes fold into channels: ``W_0 -> [d_1, 1, d_0 C]``, ``W_{L-1} -> [1, d_{L-1}, d_L C]``,
   ``b_{L-1} -> [1, d_L C]``; every remaining axis is a permutable set (or of size 1).
2. Node features ``X_k \in R^{d_k x F_k}`` per hidden layer: ``W_{k-1}`` pooled over columns,
   ``b_{k-1}``, ``W_k`` pooled over rows.
3. Global features ``G``: every tensor pooled over all its permutable axes.
4. With ``Y_k = \phi_k(X_k)`` (linear, or a set-attention block) and ``Z = \Gamma G + \beta``::

       W'_j[p, q] = A_j W_j[p, q] + Y_{j+1}[p]|_{W_j} + Y_j[q]|_{W_j} + Z|_{W_j}
       b'_j[p]    =                 Y_{j+1}[p]|_{b_j}                + Z|_{b_j}

   ``A_j`` only where both axes of ``W_j`` are permutable; terms on a folded layer are in ``G``.

Each block of the paper appears once: same-layer and adjacent-layer terms through ``Y``, pooled
terms of all pairs through ``Z``. ``set_layer="deepsets"`` (``\phi_k`` linear) spans the paper's
basis, linear up to the pooling (exactly, for mean/sum); ``set_layer="sab"`` uses a set-attention
block (Lee et al., "Set Transformer", ICML 2019) as the DWSNets code does.

**NP layer** (Zhou et al., "Permutation Equivariant Neural Functionals", NeurIPS 2023): the same
with every neuron layer permutable (``fixed_io=False``, nothing folded); :mod:`ssl_ws.models.nfn`
restores input/output identity with learned positional embeddings.

Tensors are channels-last: ``W_j: [B, p, q, C]``, ``b_j: [B, p, C]``.
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..weights import WeightSpace

LAYER_POOLINGS = ("max", "mean", "sum")
HEAD_POOLINGS = ("max", "mean", "attention")
SET_LAYERS = ("deepsets", "sab")
NORMS = ("none", "batch", "layer")

Tensors = Tuple[List[Tensor], List[Tensor]]


def reduce(x: Tensor, dim, how: str) -> Tensor:
    """Permutation-invariant pooling over ``dim`` (an int or a tuple)."""
    if how == "max":
        # torch.max over one dim back-propagates through its indices (a scatter),
        # much cheaper than amax's tie-splitting mask on large tensors.
        for d in sorted((dim,) if isinstance(dim, int) else dim, reverse=True):
            x = x.max(dim=d).values
        return x
    if how == "mean":
        return x.mean(dim=dim)
    return x.sum(dim=dim)


def row_col_pool(w: Tensor, how: str) -> Tuple[Tensor, Tensor]:
    """``w [B, p, q, C]`` pooled over ``q`` (-> ``[B, p, C]``) and over ``p`` (-> ``[B, q, C]``).

    (A fused custom-backward max for both was measured slower on CPU than two
    ``torch.max`` calls, whose backward is an index scatter.)
    """
    return reduce(w, 2, how), reduce(w, 1, how)


# ----------------------------------------------------------------- folding ---
def lift(ws: WeightSpace, fixed_io: bool, bias_features: Sequence[Tensor] = None) -> Tensors:
    """The WeightSpace as 1-channel tensors, input/output axes folded when ``fixed_io``.

    ``bias_features``: optional per-neuron features ``[B, d_{j+1}, P]`` for every layer,
    appended to the bias channels (``1 + P`` channels).
    """
    weights = [w.unsqueeze(-1) for w in ws.weights]
    biases = [b.unsqueeze(-1) for b in ws.biases]
    if bias_features is not None:
        biases = [torch.cat([b, f.to(b.dtype)], dim=-1) for b, f in zip(biases, bias_features)]
    if fixed_io:
        weights, biases = fold_io(weights, biases)
    return weights, biases


def fold_io(weights: Sequence[Tensor], biases: Sequence[Tensor]) -> Tensors:
    """Fold the input axis of ``W_0`` and the output axis of ``W_{L-1}``, ``b_{L-1}`` into channels.

    ``W_0 [B, d1, d0, C] -> [B, d1, 1, d0*C]``; ``W_{L-1} [B, dL, d_{L-1}, C] ->
    [B, 1, d_{L-1}, dL*C]``; ``b_{L-1} [B, dL, C] -> [B, 1, dL*C]`` (needs ``L >= 2``).
    """
    weights, biases = list(weights), list(biases)
    bsz, d1, d0, c = weights[0].shape
    weights[0] = weights[0].reshape(bsz, d1, 1, d0 * c)
    w = weights[-1]
    weights[-1] = w.permute(0, 2, 1, 3).reshape(bsz, 1, w.shape[2], w.shape[1] * w.shape[3])
    b = biases[-1]
    biases[-1] = b.reshape(bsz, 1, b.shape[1] * b.shape[2])
    return weights, biases


class WeightSpaceLayout:
    """Which neuron layers are permutable sets and how many channels each tensor has.

    Biases may carry more channels than weights (``bias_channels``): a bias entry is a
    neuron, so per-neuron node features (e.g. probe activations) enter there.
    """

    def __init__(self, layer_sizes: Sequence[int], channels: int, fixed_io: bool, bias_channels: int = None):
        sizes = tuple(int(s) for s in layer_sizes)
        bias_channels = channels if bias_channels is None else int(bias_channels)
        self.n_layers = L = len(sizes) - 1
        self.sizes = sizes
        self.channels = channels
        self.fixed_io = fixed_io
        self.perm = [True] * (L + 1)
        if fixed_io:
            self.perm[0] = self.perm[L] = False
        fold_in = sizes[0] if fixed_io else 1
        fold_out = sizes[L] if fixed_io else 1
        self.cw = [channels * (fold_in if j == 0 else 1) * (fold_out if j == L - 1 else 1) for j in range(L)]
        self.cb = [bias_channels * (fold_out if j == L - 1 else 1) for j in range(L)]
        self.sets = [k for k in range(L + 1) if self.perm[k]]

    def node_parts(self, k: int) -> List[Tuple[str, int, int]]:
        """``(kind, layer, channels)`` of what is stacked in ``X_k``: row-pooled ``W_{k-1}``, ``b_{k-1}``, column-pooled ``W_k``."""
        parts = []
        if k >= 1:
            parts += [("w_row", k - 1, self.cw[k - 1]), ("b", k - 1, self.cb[k - 1])]
        if k <= self.n_layers - 1:
            parts.append(("w_col", k, self.cw[k]))
        return parts

    @property
    def global_width(self) -> int:
        return sum(self.cw) + sum(self.cb)


def _parts(x: Tensor, offsets: Dict) -> Dict:
    """``x [..., F]`` cut along its last axis into the parts named by ``offsets`` (name -> ``(a, b)``,
    consecutive and covering ``F``, in order)."""
    names = list(offsets)
    return dict(zip(names, x.split([offsets[n][1] - offsets[n][0] for n in names], dim=-1)))


def _offsets(widths: Sequence[int]) -> List[Tuple[int, int]]:
    out, pos = [], 0
    for w in widths:
        out.append((pos, pos + w))
        pos += w
    return out


# ------------------------------------------------------------- set blocks ---
class SetAttention(nn.Module):
    r"""Set attention block ``SAB(X) = H + relu(H W_o)``, ``H = Q + MultiHead(Q, K, V)``
    with ``Q, K, V = X W_{q,k,v}`` (Lee et al., "Set Transformer", ICML 2019).
    Permutation equivariant over the set axis (dim 1)."""

    def __init__(self, d_in: int, d_out: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.d_out = d_out
        self.qkv = nn.Linear(d_in, 3 * d_out)
        self.fc_o = nn.Linear(d_out, d_out)

    def forward(self, x: Tensor) -> Tensor:
        bsz, n, _ = x.shape
        h, dh = self.num_heads, self.d_out // self.num_heads
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        split = lambda t: t.reshape(bsz, n, h, dh).transpose(1, 2)
        q_, k_, v_ = split(q), split(k), split(v)
        if x.is_cuda:  # fused kernels pay off on a GPU
            a = F.scaled_dot_product_attention(q_, k_, v_)
        else:  # on a CPU plain matmuls beat the flash kernel for sets of tens of neurons (RESULTS.md, "Encoders")
            a = torch.softmax(q_ @ k_.transpose(-1, -2) * dh**-0.5, dim=-1) @ v_
        hid = q + a.transpose(1, 2).reshape(bsz, n, self.d_out)
        return hid + F.relu(self.fc_o(hid))


# ------------------------------------------------------ equivariant layer ---
class EquivariantLayer(nn.Module):
    """One fused equivariant layer ``(W, b)[C channels] -> (W', b')[C' channels]``.

    Args:
        layer_sizes: the INR's ``(d_0, ..., d_L)``.
        in_channels, out_channels: ``C`` and ``C'`` (per entry, before folding).
        fixed_io: ``True`` for the DWS (hidden-neuron) group: input/output axes are
            folded into channels; ``False`` for the NP group: every axis is a set.
        set_layer: ``"deepsets"`` (linear node maps) or ``"sab"`` (set attention).
        pooling: ``"max"``, ``"mean"`` or ``"sum"`` for every pooled term.
        num_heads: attention heads of the SAB blocks (must divide ``out_channels``).
        in_bias_channels: channels of the input biases when they differ from
            ``in_channels`` (node features such as probe activations).

    Input and output are channels-last tensor lists in the layout of
    :class:`WeightSpaceLayout` (folded when ``fixed_io``).
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        in_channels: int,
        out_channels: int,
        fixed_io: bool = True,
        set_layer: str = "deepsets",
        pooling: str = "max",
        num_heads: int = 1,
        in_bias_channels: int = None,
    ):
        super().__init__()
        self.lin = lin = WeightSpaceLayout(layer_sizes, in_channels, fixed_io, in_bias_channels)
        self.lout = lout = WeightSpaceLayout(layer_sizes, out_channels, fixed_io)
        self.pooling = pooling
        L = lin.n_layers
        # node maps: one per permutable neuron layer, X_k [F_k] -> Y_k [F'_k]
        self.node_maps = nn.ModuleDict()
        self._node_in: Dict[int, Dict[Tuple[str, int], Tuple[int, int]]] = {}
        self._node_out: Dict[int, Dict[Tuple[str, int], Tuple[int, int]]] = {}
        for k in lin.sets:
            pin, pout = lin.node_parts(k), lout.node_parts(k)
            self._node_in[k] = {(kind, j): s for (kind, j, _), s in zip(pin, _offsets([c for *_, c in pin]))}
            self._node_out[k] = {(kind, j): s for (kind, j, _), s in zip(pout, _offsets([c for *_, c in pout]))}
            f_in, f_out = sum(c for *_, c in pin), sum(c for *_, c in pout)
            if set_layer == "sab":
                self.node_maps[str(k)] = SetAttention(f_in, f_out, num_heads)
            else:
                self.node_maps[str(k)] = nn.Linear(f_in, f_out, bias=False)
        # global map: every tensor pooled -> a per-channel constant for every tensor
        self.global_map = nn.Linear(lin.global_width, lout.global_width)
        self._global_out = _offsets(lout.cw + lout.cb)
        # self terms A_j for weights whose two axes are both permutable
        self.self_maps = nn.ParameterDict()
        for j in range(L):
            if lin.perm[j] and lin.perm[j + 1]:
                bound = 1.0 / math.sqrt(lin.cw[j])
                self.self_maps[str(j)] = nn.Parameter(torch.empty(lin.cw[j], lout.cw[j]).uniform_(-bound, bound))

    def forward(self, x: Tensors) -> Tensors:
        weights, biases = x
        lin, how = self.lin, self.pooling
        L = lin.n_layers
        # node features X_k and their pooled versions (the global features)
        rows, cols = {}, {}  # W_j pooled over its columns / rows (each tensor pooled once)
        for j, w in enumerate(weights):
            if lin.perm[j] and lin.perm[j + 1]:
                rows[j], cols[j] = row_col_pool(w, how)
            elif lin.perm[j + 1]:  # folded input axis: nothing to pool
                rows[j] = w.squeeze(2)
            else:
                cols[j] = w.squeeze(1)
        nodes: Dict[int, Tensor] = {}
        for k in lin.sets:
            parts = []
            for kind, j, _ in lin.node_parts(k):
                parts.append(rows[j] if kind == "w_row" else biases[j] if kind == "b" else cols[j])
            nodes[k] = torch.cat(parts, dim=-1)
        # features are cut into their parts with split, not slices: one concatenation backward per
        # tensor instead of a zero-filled gradient per slice (kernel launches a GPU step waits for)
        pooled = {k: _parts(reduce(v, 1, how), self._node_in[k]) for k, v in nodes.items()}
        g_w, g_b = [], []
        for j in range(L):
            if lin.perm[j + 1]:
                g_w.append(pooled[j + 1][("w_row", j)])
                g_b.append(pooled[j + 1][("b", j)])
            else:
                g_w.append(pooled[j][("w_col", j)])  # W_{L-1} with a folded output axis
                g_b.append(biases[j].flatten(1))
        z = self.global_map(torch.cat(g_w + g_b, dim=-1))
        zs = z.split([b - a for a, b in self._global_out], dim=-1)
        ys = {k: _parts(self.node_maps[str(k)](v), self._node_out[k]) for k, v in nodes.items()}

        new_w, new_b = [], []
        for j in range(L):
            zw = zs[j]
            if lin.perm[j]:
                col = ys[j][("w_col", j)].unsqueeze(1) + zw[:, None, None, :]  # [B, 1, d_j, C']
            else:
                col = zw[:, None, None, :]
            if lin.perm[j + 1]:
                out = ys[j + 1][("w_row", j)].unsqueeze(2) + col  # [B, d_{j+1}, q, C']
            else:
                out = col
            if str(j) in self.self_maps:  # out + W_j A_j in one pass over the largest tensor
                w = weights[j]
                out = torch.addmm(out.reshape(-1, out.shape[-1]), w.reshape(-1, w.shape[-1]), self.self_maps[str(j)])
                out = out.reshape(*w.shape[:3], -1)
            new_w.append(out)
            zb = zs[L + j]
            if lin.perm[j + 1]:
                new_b.append(ys[j + 1][("b", j)] + zb[:, None, :])
            else:
                new_b.append(zb[:, None, :])
        return new_w, new_b


# ------------------------------------------------------ elementwise parts ---
class TensorNorm(nn.Module):
    """Per-tensor normalization over the channels: BatchNorm (statistics over the batch
    and all entries of a tensor, as in DWSNets) or LayerNorm (per entry). Both commute
    with neuron permutations."""

    def __init__(self, kind: str, layout: WeightSpaceLayout):
        super().__init__()
        make = (lambda c: nn.BatchNorm1d(c)) if kind == "batch" else (lambda c: nn.LayerNorm(c))
        self.kind = kind
        self.w = nn.ModuleList(make(c) for c in layout.cw)
        self.b = nn.ModuleList(make(c) for c in layout.cb)

    def _norm(self, m: nn.Module, t: Tensor) -> Tensor:
        if self.kind == "batch":
            return m(t.reshape(-1, t.shape[-1])).reshape(t.shape)
        return m(t)

    def forward(self, x: Tensors) -> Tensors:
        weights, biases = x
        return [self._norm(m, t) for m, t in zip(self.w, weights)], [self._norm(m, t) for m, t in zip(self.b, biases)]


def map_tensors(fn, x: Tensors) -> Tensors:
    return [fn(t) for t in x[0]], [fn(t) for t in x[1]]


class InvariantPool(nn.Module):
    """Pool every tensor over all its permutable axes and concatenate: ``[B, F_G]``.

    ``"attention"`` pools each tensor with softmax weights ``softmax_n(x_n . a)`` over
    its entries, one learned query ``a`` per tensor (initialised to zero, i.e. mean).
    Folded (fixed) axes are channels, so they are kept, as in DWSNets' invariant layer.
    """

    def __init__(self, layout: WeightSpaceLayout, how: str):
        super().__init__()
        self.how = how
        self.layout = layout
        L = layout.n_layers
        # tensors with at least one permutable axis (a fully folded b_{L-1} has nothing to pool)
        self._pooled = [layout.perm[j] or layout.perm[j + 1] for j in range(L)] + [layout.perm[j + 1] for j in range(L)]
        if how == "attention":
            self.queries = nn.ParameterDict(
                {str(i): nn.Parameter(torch.zeros(c)) for i, c in enumerate(layout.cw + layout.cb) if self._pooled[i]}
            )

    @property
    def out_dim(self) -> int:
        return self.layout.global_width

    def forward(self, x: Tensors) -> Tensor:
        flat = [w.flatten(1, 2) for w in x[0]] + list(x[1])  # [B, N, c]
        if self.how == "attention":
            out = []
            for i, t in enumerate(flat):
                if not self._pooled[i]:
                    out.append(t.squeeze(1))
                    continue
                att = torch.softmax(t @ self.queries[str(i)], dim=1)
                out.append((att.unsqueeze(-1) * t).sum(1))
            return torch.cat(out, dim=-1)
        return torch.cat([reduce(t, 1, self.how) for t in flat], dim=-1)
