"""Weight standardization with statistics tied along the weight-space symmetries.

Encoders see ``(W - mean) / std``, statistics computed once over the training split and stored
with every checkpoint. They are averaged over the batch and over every axis a hidden-neuron
permutation acts on (per-entry statistics, as in DWSNets, would break the symmetry):

* weight ``W_i [d_out, d_in]``: per input coordinate for the first layer, per output channel for
  the last, one scalar for hidden-to-hidden layers;
* bias ``b_i``: one scalar for hidden layers, per output channel for the last.

So ``normalize(permute(ws)) == permute(normalize(ws))`` exactly.
"""

from __future__ import annotations

from typing import Dict, List

import torch
from torch import Tensor, nn

from ..weights import INRSpec, WeightSpace


def _tied_dims(spec: INRSpec, layer: int):
    """Axes (of the un-batched weight [d_out, d_in]) that hidden-neuron permutations act on."""
    rows_hidden = layer < spec.n_layers - 1
    cols_hidden = layer > 0
    return rows_hidden, cols_hidden


class WeightNormalizer(nn.Module):
    """``ws -> (ws - mean) / std`` with symmetry-tied statistics (see module doc).

    An ``nn.Module`` whose statistics are buffers (``w_mean_0``, ``w_std_0``, ``b_mean_0``, ...),
    so it moves with the model that holds it (``model.to(device)``) and is an ordinary
    submodule of the encoders' LightningModule and of :class:`~ssl_ws.models.export.EmbeddingModel`.
    The buffers are *not persistent*: the statistics travel in the portable dict of
    :meth:`to_dict` (plain tensors, ``torch.load(..., weights_only=True)``-safe), which every
    checkpoint and encoder export stores under ``"normalizer"``.
    """

    _KINDS = ("w_mean", "w_std", "b_mean", "b_std")

    def __init__(self, spec: INRSpec, w_mean: List[Tensor], w_std: List[Tensor], b_mean: List[Tensor], b_std: List[Tensor]):
        super().__init__()
        self.spec = spec
        for kind, values in zip(self._KINDS, (w_mean, w_std, b_mean, b_std)):
            if len(values) != spec.n_layers:
                raise ValueError(f"{kind}: {len(values)} tensors for an INR of {spec.n_layers} layers")
            for i, t in enumerate(values):
                self.register_buffer(f"{kind}_{i}", torch.as_tensor(t, dtype=torch.float32).clone(), persistent=False)
        # the same statistics broadcast to every parameter, in flat order: one operation on a batch made
        # from flat vectors (WeightSpace.flat) instead of one per layer tensor, with the same values
        for kind in ("mean", "std"):
            parts = []
            for i, ((o, d), (ob,)) in enumerate(zip(spec.weight_shapes, spec.bias_shapes)):
                parts += [getattr(self, f"w_{kind}_{i}").expand(o, d).reshape(-1),
                          getattr(self, f"b_{kind}_{i}").expand(ob).reshape(-1)]
            self.register_buffer(f"flat_{kind}", torch.cat(parts), persistent=False)

    def _stats(self, kind: str) -> List[Tensor]:
        return [getattr(self, f"{kind}_{i}") for i in range(self.spec.n_layers)]

    @property
    def w_mean(self) -> List[Tensor]:
        return self._stats("w_mean")

    @property
    def w_std(self) -> List[Tensor]:
        return self._stats("w_std")

    @property
    def b_mean(self) -> List[Tensor]:
        return self._stats("b_mean")

    @property
    def b_std(self) -> List[Tensor]:
        return self._stats("b_std")

    @classmethod
    def identity(cls, spec: INRSpec) -> "WeightNormalizer":
        n = spec.n_layers
        one, zero = torch.ones(1, 1), torch.zeros(1, 1)
        return cls(spec, [zero] * n, [one] * n, [zero.view(1)] * n, [one.view(1)] * n)

    @classmethod
    def fit(cls, ws_batches, spec: INRSpec, eps: float = 1e-6) -> "WeightNormalizer":
        """Statistics from one WeightSpace or an iterable of them (streamed, float64 sums)."""
        if isinstance(ws_batches, WeightSpace):
            ws_batches = [ws_batches]
        n = spec.n_layers
        w_sum = [0.0] * n
        w_sq = [0.0] * n
        w_cnt = [0] * n
        b_sum = [0.0] * n
        b_sq = [0.0] * n
        b_cnt = [0] * n
        for ws in ws_batches:
            for i in range(n):
                rows_h, cols_h = _tied_dims(spec, i)
                w = ws.weights[i].double()
                dims = [0] + ([1] if rows_h else []) + ([2] if cols_h else [])
                w_sum[i] = w_sum[i] + w.sum(dim=dims, keepdim=True)[0]
                w_sq[i] = w_sq[i] + (w * w).sum(dim=dims, keepdim=True)[0]
                w_cnt[i] += int(torch.tensor([w.shape[d] for d in dims]).prod())
                b = ws.biases[i].double()
                bdims = [0] + ([1] if rows_h else [])
                b_sum[i] = b_sum[i] + b.sum(dim=bdims, keepdim=True)[0]
                b_sq[i] = b_sq[i] + (b * b).sum(dim=bdims, keepdim=True)[0]
                b_cnt[i] += int(torch.tensor([b.shape[d] for d in bdims]).prod())
        if not w_cnt[0]:
            raise ValueError("no weights to compute normalization statistics from")

        def finish(s, sq, c):
            mean = s / c
            var = (sq / c - mean * mean).clamp_min(0)
            return mean.float().cpu(), (var.sqrt() + eps).float().cpu()

        wm, wsd, bm, bsd = [], [], [], []
        for i in range(n):
            m, s = finish(w_sum[i], w_sq[i], w_cnt[i])
            wm.append(m), wsd.append(s)
            m, s = finish(b_sum[i], b_sq[i], b_cnt[i])
            bm.append(m), bsd.append(s)
        return cls(spec, wm, wsd, bm, bsd)

    def forward(self, ws: WeightSpace) -> WeightSpace:
        # the buffers live wherever the holding module was moved; .to() is a no-op then, and
        # casts for a batch of another dtype / device (a normalizer used on its own)
        dev, dt = ws.device, ws.dtype
        if ws.flat is not None:
            return WeightSpace.from_flat((ws.flat - self.flat_mean.to(dev, dt)).div_(self.flat_std.to(dev, dt)), ws.spec)
        return WeightSpace(
            [(w - m.to(dev, dt)) / s.to(dev, dt) for w, m, s in zip(ws.weights, self.w_mean, self.w_std)],
            [(b - m.to(dev, dt)) / s.to(dev, dt) for b, m, s in zip(ws.biases, self.b_mean, self.b_std)],
            ws.spec,
        )

    def normalize(self, ws: WeightSpace) -> WeightSpace:
        return self(ws)

    def denormalize(self, ws: WeightSpace) -> WeightSpace:
        dev, dt = ws.device, ws.dtype
        return WeightSpace(
            [w * s.to(dev, dt) + m.to(dev, dt) for w, m, s in zip(ws.weights, self.w_mean, self.w_std)],
            [b * s.to(dev, dt) + m.to(dev, dt) for b, m, s in zip(ws.biases, self.b_mean, self.b_std)],
            ws.spec,
        )

    def to_dict(self) -> Dict:
        """The portable form: the spec and lists of float32 CPU tensors (``weights_only``-safe)."""
        out: Dict = {"spec": self.spec.to_dict()}
        for kind in self._KINDS:
            out[kind] = [t.detach().to("cpu", torch.float32).clone() for t in self._stats(kind)]
        return out

    @classmethod
    def from_dict(cls, d: Dict) -> "WeightNormalizer":
        """Inverse of :meth:`to_dict` (also reads the exports of earlier versions: same layout)."""
        return cls(INRSpec.from_dict(d["spec"]), list(d["w_mean"]), list(d["w_std"]), list(d["b_mean"]), list(d["b_std"]))

    def extra_repr(self) -> str:
        return f"spec=[{self.spec.describe()}]"
