"""A batch of MLP parameters together with the spec that gives them meaning.

An INR here is an MLP ``f(x) = W_L h_{L-1} + b_L + offset`` with hidden layers
``h_i = act(w0 * (W_i h_{i-1} + b_i))`` (SIREN: ``act = sin``, Sitzmann et al.,
NeurIPS 2020; the DWSNets INR data sets use ``w0 = 30`` and ``offset = 0.5``).

Parameter order contract (stable, ARCHITECTURE.md "Contracts"): one INR's parameters are a flat
float vector in PyTorch's own order, layer 0 weight ``[d_out, d_in]`` row-major,
layer 0 bias, layer 1 weight, ... -- exactly ``parameters_to_vector`` of an
``nn.Sequential`` of ``nn.Linear`` layers.

:class:`WeightSpace` holds a batch of B such INRs as per-layer tensors with a leading
batch dimension (``weights[i]: [B, d_out, d_in]``, ``biases[i]: [B, d_out]``) and
their :class:`INRSpec`. It is immutable by convention: every operation returns a
new object sharing unchanged tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .errors import SslWsError

ACTIVATIONS = ("sine", "relu")
MAX_LAYER_SIZE = 1 << 16  # neurons per layer of an INR this package reads


@dataclass(frozen=True)
class INRSpec:
    """The architecture of an INR: what a flat parameter vector means.

    Attributes:
        layer_sizes: ``(d_in, h_1, ..., h_{L-1}, d_out)``, e.g. ``(2, 32, 32, 1)``.
        activation: ``"sine"`` (SIREN, ``sin(w0 * z)``) or ``"relu"``.
        w0: frequency factor of the sine activation (ignored for ReLU).
        output_offset: constant added to the last linear layer's output.
    """

    layer_sizes: Tuple[int, ...] = (2, 32, 32, 1)
    activation: str = "sine"
    w0: float = 30.0
    output_offset: float = 0.5

    def __post_init__(self):
        if any(isinstance(s, bool) or not isinstance(s, (int, float)) and not hasattr(s, "__index__")
               or isinstance(s, float) and not s.is_integer() for s in self.layer_sizes):
            raise SslWsError(f"layer_sizes must be whole numbers; got {tuple(self.layer_sizes)}")
        sizes = tuple(int(s) for s in self.layer_sizes)
        object.__setattr__(self, "layer_sizes", sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise SslWsError(f"layer_sizes must list at least an input and an output size, all positive; got {sizes}")
        if self.activation not in ACTIVATIONS:
            raise SslWsError(f"unknown activation {self.activation!r}; expected one of {ACTIVATIONS}")
        if max(sizes) > MAX_LAYER_SIZE:
            raise SslWsError(f"layer_sizes must be at most {MAX_LAYER_SIZE} each; got {sizes}")
        try:
            w0, offset = float(self.w0), float(self.output_offset)
        except (TypeError, ValueError):
            raise SslWsError(f"w0 and output_offset must be numbers; got {self.w0!r}, {self.output_offset!r}") from None
        if not (math.isfinite(w0) and w0 > 0):
            raise SslWsError(f"w0 must be a finite positive number; got {self.w0!r}")
        if not math.isfinite(offset):
            raise SslWsError(f"output_offset must be a finite number; got {self.output_offset!r}")
        object.__setattr__(self, "w0", w0)
        object.__setattr__(self, "output_offset", offset)

    @property
    def n_layers(self) -> int:
        """Number of linear layers."""
        return len(self.layer_sizes) - 1

    @property
    def in_dim(self) -> int:
        return self.layer_sizes[0]

    @property
    def out_dim(self) -> int:
        return self.layer_sizes[-1]

    @property
    def hidden_sizes(self) -> Tuple[int, ...]:
        """Widths of the hidden layers: the neurons that may be permuted."""
        return self.layer_sizes[1:-1]

    @property
    def weight_shapes(self) -> List[Tuple[int, int]]:
        return [(self.layer_sizes[i + 1], self.layer_sizes[i]) for i in range(self.n_layers)]

    @property
    def bias_shapes(self) -> List[Tuple[int]]:
        return [(self.layer_sizes[i + 1],) for i in range(self.n_layers)]

    @property
    def n_params(self) -> int:
        return sum(o * i + o for o, i in self.weight_shapes)

    def to_dict(self) -> Dict:
        return {
            "layer_sizes": list(self.layer_sizes),
            "activation": self.activation,
            "w0": self.w0,
            "output_offset": self.output_offset,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "INRSpec":
        return cls(
            layer_sizes=tuple(d["layer_sizes"]),
            activation=d.get("activation", "sine"),
            w0=d.get("w0", 30.0),
            output_offset=d.get("output_offset", 0.0),
        )

    def describe(self) -> str:
        arch = " -> ".join(str(s) for s in self.layer_sizes)
        act = f"sin({self.w0:g}x)" if self.activation == "sine" else "relu"
        return f"{arch}, {act}, output offset {self.output_offset:g}, {self.n_params} parameters"

    def build_module(self) -> nn.Sequential:
        """A plain ``nn.Sequential`` of ``nn.Linear`` layers with this spec's shapes.

        Its ``parameters_to_vector`` order is the flat parameter order. The
        activation and ``w0``/offset are *not* modules in it (they carry no
        parameters); :func:`ssl_ws.inr.render` applies them.
        """
        return nn.Sequential(*[nn.Linear(i, o) for o, i in self.weight_shapes])


def _check_same_spec(a: INRSpec, b: INRSpec, what: str = "operation"):
    if a != b:
        raise SslWsError(f"{what} needs INRs of one architecture; got [{a.describe()}] and [{b.describe()}]")


class WeightSpace:
    """A batch of B INRs of one :class:`INRSpec`, as per-layer tensors.

    Args:
        weights: ``L`` tensors ``[B, d_out, d_in]``.
        biases: ``L`` tensors ``[B, d_out]``.
        spec: the architecture (checked against the shapes).

    A batch made by :meth:`from_flat` keeps its flat tensor: :attr:`flat` (its layers are views of it),
    so that affine maps of every parameter (normalization) run as one operation on it.
    """

    __slots__ = ("weights", "biases", "spec", "_flat")

    def __init__(self, weights: Sequence[Tensor], biases: Sequence[Tensor], spec: INRSpec):
        weights, biases = tuple(weights), tuple(biases)
        if len(weights) != spec.n_layers or len(biases) != spec.n_layers:
            raise SslWsError(f"expected {spec.n_layers} weight and bias tensors, got {len(weights)} and {len(biases)}")
        batch = weights[0].shape[0]
        for i, (w, b, ws, bs) in enumerate(zip(weights, biases, spec.weight_shapes, spec.bias_shapes)):
            if tuple(w.shape) != (batch, *ws) or tuple(b.shape) != (batch, *bs):
                raise SslWsError(
                    f"layer {i}: expected weight {(batch, *ws)} and bias {(batch, *bs)}, "
                    f"got {tuple(w.shape)} and {tuple(b.shape)}"
                )
        self.weights = weights
        self.biases = biases
        self.spec = spec
        self._flat = None

    @property
    def flat(self) -> Optional[Tensor]:
        """The ``[B, P]`` tensor whose views the layers are (a batch made by :meth:`from_flat`), else ``None``."""
        return self._flat

    # ----------------------------------------------------------------- basics
    def __len__(self) -> int:
        return self.weights[0].shape[0]

    @property
    def batch_size(self) -> int:
        return len(self)

    @property
    def device(self) -> torch.device:
        return self.weights[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.weights[0].dtype

    def __repr__(self) -> str:
        return f"WeightSpace(batch={len(self)}, spec=[{self.spec.describe()}], device={self.device})"

    def replace(self, weights: Optional[Sequence[Tensor]] = None, biases: Optional[Sequence[Tensor]] = None) -> "WeightSpace":
        """A new WeightSpace with some tensors replaced (same spec)."""
        return WeightSpace(self.weights if weights is None else weights, self.biases if biases is None else biases, self.spec)

    def map(self, fn) -> "WeightSpace":
        """Apply ``fn`` to every tensor (e.g. ``lambda t: t.detach()``)."""
        return WeightSpace([fn(w) for w in self.weights], [fn(b) for b in self.biases], self.spec)

    def to(self, *args, **kwargs) -> "WeightSpace":
        return self.map(lambda t: t.to(*args, **kwargs))

    def detach(self) -> "WeightSpace":
        return self.map(lambda t: t.detach())

    def clone(self) -> "WeightSpace":
        return self.map(lambda t: t.clone())

    def __getitem__(self, index) -> "WeightSpace":
        """Index the batch dimension: an int keeps a batch of one."""
        if isinstance(index, int):
            index = slice(index, index + 1) if index != -1 else slice(-1, None)
        return self.map(lambda t: t[index])

    @staticmethod
    def cat(items: Sequence["WeightSpace"]) -> "WeightSpace":
        """Concatenate batches of one spec."""
        items = list(items)
        if not items:
            raise SslWsError("cannot concatenate an empty list of WeightSpaces")
        for other in items[1:]:
            _check_same_spec(items[0].spec, other.spec, "concatenation")
        n = items[0].spec.n_layers
        return WeightSpace(
            [torch.cat([it.weights[i] for it in items]) for i in range(n)],
            [torch.cat([it.biases[i] for it in items]) for i in range(n)],
            items[0].spec,
        )

    # ------------------------------------------------------ flat conversions
    @classmethod
    def from_flat(cls, flat: Tensor, spec: INRSpec) -> "WeightSpace":
        """From flat vectors ``[B, P]`` (or ``[P]``) in PyTorch parameter order."""
        if not torch.is_tensor(flat):
            flat = torch.as_tensor(flat)
        if flat.dim() == 1:
            flat = flat.unsqueeze(0)
        if flat.dim() != 2 or flat.shape[1] != spec.n_params:
            raise SslWsError(
                f"flat parameters must have shape [B, {spec.n_params}] for [{spec.describe()}], got {tuple(flat.shape)}"
            )
        batch = flat.shape[0]
        weights, biases, pos = [], [], 0
        for (o, i) in spec.weight_shapes:
            weights.append(flat[:, pos : pos + o * i].reshape(batch, o, i))
            pos += o * i
            biases.append(flat[:, pos : pos + o])
            pos += o
        ws = cls.__new__(cls)  # the shapes are right by construction: no per-layer check
        ws.weights, ws.biases, ws.spec, ws._flat = tuple(weights), tuple(biases), spec, flat
        return ws

    def to_flat(self) -> Tensor:
        """Flat vectors ``[B, P]`` in PyTorch parameter order."""
        parts = []
        for w, b in zip(self.weights, self.biases):
            parts.append(w.reshape(len(self), -1))
            parts.append(b)
        return torch.cat(parts, dim=1)

    # ------------------------------------------------- state-dict conversions
    @classmethod
    def from_state_dicts(
        cls, state_dicts: Sequence[Mapping[str, Tensor]], spec: Optional[INRSpec] = None, **spec_kwargs
    ) -> "WeightSpace":
        """From ``nn.Sequential`` state dicts (keys ``seq.{i}.weight`` or ``{i}.weight``).

        The layer sizes are read from the first state dict when ``spec`` is not
        given (``spec_kwargs`` set activation, w0, output offset). Every state dict
        must have the same architecture.
        """
        if not state_dicts:
            raise SslWsError("no state dicts given")
        first_spec = spec_from_state_dict(state_dicts[0], **spec_kwargs)
        spec = spec or first_spec
        _check_same_spec(spec, INRSpec(first_spec.layer_sizes, spec.activation, spec.w0, spec.output_offset), "loading")
        layers = [_linear_tensors(sd) for sd in state_dicts]
        for k, lay in enumerate(layers):
            sizes = _sizes_of(lay)
            if sizes != spec.layer_sizes:
                raise SslWsError(f"state dict {k} has layer sizes {sizes}, expected {spec.layer_sizes}")
        n = spec.n_layers
        return cls(
            [torch.stack([lay[i][0] for lay in layers]).float() for i in range(n)],
            [torch.stack([lay[i][1] for lay in layers]).float() for i in range(n)],
            spec,
        )

    def to_state_dict(self, index: int = 0, prefix: str = "seq.") -> Dict[str, Tensor]:
        """The state dict of INR ``index``: keys ``{prefix}{i}.weight`` /
        ``{prefix}{i}.bias`` for linear layer ``i``. The default prefix ``seq.`` is
        the layout of the published INR data sets; ``prefix=""`` fits a plain
        ``nn.Sequential`` of ``nn.Linear`` layers.
        """
        out = {}
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            out[f"{prefix}{i}.weight"] = w[index].detach().clone()
            out[f"{prefix}{i}.bias"] = b[index].detach().clone()
        return out

    def to_module(self, index: int = 0) -> nn.Sequential:
        """INR ``index`` loaded into :meth:`INRSpec.build_module`."""
        module = self.spec.build_module().to(self.device, self.dtype)
        module.load_state_dict(self.to_state_dict(index, prefix=""))
        return module


def _linear_tensors(state_dict: Mapping[str, Tensor]) -> List[Tuple[Tensor, Tensor]]:
    """The (weight, bias) pairs of a Sequential-of-Linear state dict, in layer order.

    Accepts keys ``seq.{i}.weight`` (the published INR data sets), ``{i}.weight``
    (a plain ``nn.Sequential``), or any common prefix before the index.
    Indices need not be contiguous (``seq.0``, ``seq.2`` ... when activations are
    modules in the Sequential).
    """
    found: Dict[int, Dict[str, Tensor]] = {}
    prefixes = set()
    for key, value in state_dict.items():
        parts = key.split(".")
        if len(parts) < 2 or parts[-1] not in ("weight", "bias") or not parts[-2].isdigit():
            continue
        if not torch.is_tensor(value):
            raise SslWsError(f"state dict entry {key!r} is not a tensor")
        prefixes.add(".".join(parts[:-2]))
        found.setdefault(int(parts[-2]), {})[parts[-1]] = value
    if not found:
        raise SslWsError("state dict has no '<prefix>.<i>.weight' / '.bias' entries of linear layers")
    if len(prefixes) > 1:
        raise SslWsError(f"state dict mixes several module prefixes: {sorted(prefixes)}")
    layers = []
    for idx in sorted(found):
        entry = found[idx]
        if "weight" not in entry or "bias" not in entry:
            raise SslWsError(f"layer {idx} of the state dict lacks a weight or a bias")
        w, b = entry["weight"], entry["bias"]
        if w.dim() != 2 or b.dim() != 1 or b.shape[0] != w.shape[0]:
            raise SslWsError(f"layer {idx}: weight {tuple(w.shape)} and bias {tuple(b.shape)} are not a linear layer")
        layers.append((w, b))
    for (w0_, _), (w1_, _) in zip(layers[:-1], layers[1:]):
        if w1_.shape[1] != w0_.shape[0]:
            raise SslWsError(f"consecutive layers do not chain: {tuple(w0_.shape)} then {tuple(w1_.shape)}")
    return layers


def _sizes_of(layers: List[Tuple[Tensor, Tensor]]) -> Tuple[int, ...]:
    return (layers[0][0].shape[1],) + tuple(w.shape[0] for w, _ in layers)


def spec_from_state_dict(state_dict: Mapping[str, Tensor], **spec_kwargs) -> INRSpec:
    """Read the layer sizes of a Sequential-of-Linear state dict into an INRSpec."""
    return INRSpec(layer_sizes=_sizes_of(_linear_tensors(state_dict)), **spec_kwargs)
