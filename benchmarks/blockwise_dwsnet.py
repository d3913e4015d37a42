"""Benchmark baseline: the DWS layer written block by block, one module per block.

This is the straightforward way to implement the layer of Navon et al. (ICML 2023),
the way the DWSNets reference code is organised: for every pair (input tensor i,
output tensor j) of the 2L weight and bias tensors, a module pools its input,
applies its own small linear map and broadcasts its result to the output's shape;
the outputs are the sums of their blocks. It is *the same layer* as the fused
:class:`ssl_ws.models.dws_layers.EquivariantLayer`, with the same parameters split
into blocks:

* self blocks ``W_j -> W_j`` (entrywise) for weights with two permutable axes;
* node blocks through each hidden neuron set ``n_k``: each (input piece, output
  piece) pair of ``X_k -> Y_k`` is its own module (``set_layer="deepsets"``); with
  ``set_layer="sab"`` the set attention of ``n_k`` mixes all pieces, so it is one
  module per set (it pools its own inputs and broadcasts its own outputs);
* global blocks: every tensor pooled over all its permutable axes -> its own linear
  map into every output tensor, broadcast (``(2L)^2`` modules), plus one bias per
  output tensor.

:func:`load_from_fused` copies a fused layer's parameters into the blocks, so the
benchmark can check that both compute the same function (same parameter count,
same outputs, same invariance). Used by ``benchmarks/encoder_speed.py`` only.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import Tensor, nn

from ssl_ws.models.dws_layers import EquivariantLayer, SetAttention, WeightSpaceLayout, reduce
from ssl_ws.models.dwsnet import DWSNet


def _names(L: int) -> List[Tuple[str, int]]:
    return [("w", j) for j in range(L)] + [("b", j) for j in range(L)]


class BlockwiseDWSLayer(nn.Module):
    def __init__(self, layer_sizes, in_channels, out_channels, fixed_io=True, set_layer="deepsets",
                 pooling="max", num_heads=1):
        super().__init__()
        self.lin = lin = WeightSpaceLayout(layer_sizes, in_channels, fixed_io)
        self.lout = lout = WeightSpaceLayout(layer_sizes, out_channels, fixed_io)
        self.pooling, self.set_layer = pooling, set_layer
        L = lin.n_layers
        cin = {("w", j): lin.cw[j] for j in range(L)} | {("b", j): lin.cb[j] for j in range(L)}
        cout = {("w", j): lout.cw[j] for j in range(L)} | {("b", j): lout.cb[j] for j in range(L)}
        self.self_blocks = nn.ModuleDict()
        for j in range(L):
            if lin.perm[j] and lin.perm[j + 1]:
                self.self_blocks[f"w{j}"] = nn.Linear(lin.cw[j], lout.cw[j], bias=False)
        self.node_blocks = nn.ModuleDict()
        self.set_blocks = nn.ModuleDict()
        for k in lin.sets:
            pin, pout = lin.node_parts(k), lout.node_parts(k)
            if set_layer == "sab":
                self.set_blocks[str(k)] = SetAttention(sum(c for *_, c in pin), sum(c for *_, c in pout), num_heads)
            else:
                for kind_i, i, ci in pin:
                    for kind_o, o, co in pout:
                        self.node_blocks[f"{k}_{kind_i}{i}_{kind_o}{o}"] = nn.Linear(ci, co, bias=False)
        self.global_blocks = nn.ModuleDict()
        for si in _names(L):
            for so in _names(L):
                self.global_blocks[f"{si[0]}{si[1]}_{so[0]}{so[1]}"] = nn.Linear(cin[si], cout[so], bias=False)
        self.biases = nn.ParameterDict({f"{n}{j}": nn.Parameter(torch.zeros(cout[(n, j)])) for n, j in _names(L)})

    # what a node piece reads from the input / how it is broadcast to the output
    def _piece(self, kind, j, weights, biases):
        lin, how = self.lin, self.pooling
        if kind == "w_row":
            return reduce(weights[j], 2, how) if lin.perm[j] else weights[j].squeeze(2)
        if kind == "b":
            return biases[j]
        return reduce(weights[j], 1, how) if lin.perm[j + 1] else weights[j].squeeze(1)

    @staticmethod
    def _spread(kind, y):
        return y.unsqueeze(2) if kind == "w_row" else (y.unsqueeze(1) if kind == "w_col" else y)

    def forward(self, x):
        weights, biases = x
        lin, lout, how = self.lin, self.lout, self.pooling
        L = lin.n_layers
        bsz = weights[0].shape[0]
        shapes = {("w", j): weights[j].shape[:3] + (lout.cw[j],) for j in range(L)}
        shapes.update({("b", j): biases[j].shape[:2] + (lout.cb[j],) for j in range(L)})
        out = {}

        def add(name, t):
            t = t.expand(shapes[name])
            out[name] = t if name not in out else out[name] + t

        for j in range(L):
            if f"w{j}" in self.self_blocks:
                add(("w", j), self.self_blocks[f"w{j}"](weights[j]))
        for k in lin.sets:
            pin, pout = lin.node_parts(k), lout.node_parts(k)
            if self.set_layer == "sab":
                y = self.set_blocks[str(k)](torch.cat([self._piece(kd, i, weights, biases) for kd, i, _ in pin], -1))
                pos = 0
                for kind_o, o, co in pout:
                    add(("b" if kind_o == "b" else "w", o), self._spread(kind_o, y[..., pos:pos + co]))
                    pos += co
            else:
                for kind_i, i, _ in pin:
                    for kind_o, o, _ in pout:
                        piece = self._piece(kind_i, i, weights, biases)
                        y = self.node_blocks[f"{k}_{kind_i}{i}_{kind_o}{o}"](piece)
                        add(("b" if kind_o == "b" else "w", o), self._spread(kind_o, y))
        for si in _names(L):
            src = weights[si[1]] if si[0] == "w" else biases[si[1]]
            pooled = reduce(src, (1, 2) if si[0] == "w" else 1, how)
            for so in _names(L):
                y = self.global_blocks[f"{si[0]}{si[1]}_{so[0]}{so[1]}"](pooled) + (
                    self.biases[f"{so[0]}{so[1]}"] if si == so else 0.0)
                add(so, y[:, None, None, :] if so[0] == "w" else y[:, None, :])
        return [out[("w", j)] for j in range(L)], [out[("b", j)] for j in range(L)]


@torch.no_grad()
def load_from_fused(block: BlockwiseDWSLayer, fused: EquivariantLayer) -> None:
    """Copy a fused layer's parameters into the blocks (same function afterwards)."""
    lin, lout = block.lin, block.lout
    L = lin.n_layers
    for j in range(L):
        if f"w{j}" in block.self_blocks:
            block.self_blocks[f"w{j}"].weight.copy_(fused.self_maps[str(j)].T)
    for k in lin.sets:
        if block.set_layer == "sab":
            block.set_blocks[str(k)].load_state_dict(fused.node_maps[str(k)].state_dict())
            continue
        m = fused.node_maps[str(k)].weight  # [F'_k, F_k]
        for kind_i, i, _ in lin.node_parts(k):
            a, b = fused._node_in[k][(kind_i, i)]
            for kind_o, o, _ in lout.node_parts(k):
                c, d = fused._node_out[k][(kind_o, o)]
                block.node_blocks[f"{k}_{kind_i}{i}_{kind_o}{o}"].weight.copy_(m[c:d, a:b])
    # fused global input order: W_0..W_{L-1}, b_0..b_{L-1}, same for the output
    gin = dict(zip(_names(L), _offsets(lin.cw + lin.cb)))
    gout = dict(zip(_names(L), _offsets(lout.cw + lout.cb)))
    wt, bs = fused.global_map.weight, fused.global_map.bias
    for si in _names(L):
        a, b = gin[si]
        for so in _names(L):
            c, d = gout[so]
            block.global_blocks[f"{si[0]}{si[1]}_{so[0]}{so[1]}"].weight.copy_(wt[c:d, a:b])
    for so in _names(L):
        c, d = gout[so]
        block.biases[f"{so[0]}{so[1]}"].copy_(bs[c:d])


def _offsets(widths: Sequence[int]):
    out, pos = [], 0
    for w in widths:
        out.append((pos, pos + w))
        pos += w
    return out


class BlockwiseDWSNet(DWSNet):
    """:class:`DWSNet` with every fused layer replaced by its block-per-module twin."""

    name = "dwsnet_blockwise"

    def __init__(self, spec, **kwargs):
        super().__init__(spec, **kwargs)
        cfg = self.config
        fused = self.layers
        self.layers = nn.ModuleList(
            BlockwiseDWSLayer(self.spec.layer_sizes, f.lin.channels, f.lout.channels, fixed_io=True,
                              set_layer=cfg["set_layer"], pooling=cfg["layer_pooling"], num_heads=cfg["num_heads"])
            for f in fused
        )
        self._fused_template = None

    @classmethod
    def from_fused(cls, model: DWSNet) -> "BlockwiseDWSNet":
        """A blockwise twin computing the same function as ``model``."""
        cfg = {k: v for k, v in model.config.items() if k != "name"}
        twin = cls(model.spec, **cfg)
        own = {k: v for k, v in model.state_dict().items() if not k.startswith("layers.")}
        twin.load_state_dict(own, strict=False)
        for blk, fused in zip(twin.layers, model.layers):
            load_from_fused(blk, fused)
        return twin.to(next(model.parameters()).device)
