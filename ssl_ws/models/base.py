"""The common shape of every weight-space encoder: ``WeightSpace [B] -> [B, out_dim]``.

An encoder is built for one INR architecture (:class:`~ssl_ws.weights.INRSpec`; only
the layer sizes matter to it) and records the keyword arguments that rebuild it, so
that ``build_encoder(**{**enc.config, "spec": spec})`` gives the same architecture
(the exported-encoder format stores ``enc.config`` next to the weights).

``invariant`` declares whether the embedding is invariant to permutations of the
hidden neurons of the input INR (the symmetry group of an MLP's weight space,
Hecht-Nielsen 1990; Navon et al., ICML 2023). The tests hold every encoder that
declares it to it.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Union

import torch
from torch import Tensor, nn

from ..errors import SslWsError
from ..weights import INRSpec, WeightSpace


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def as_spec(spec: Union[INRSpec, Mapping]) -> INRSpec:
    """Accept an :class:`INRSpec` or its ``to_dict()`` form (as stored in configs)."""
    if isinstance(spec, INRSpec):
        return spec
    if isinstance(spec, Mapping):
        return INRSpec.from_dict(spec)
    raise SslWsError(f"an encoder needs an INRSpec (or its dict form), got {type(spec).__name__}")


class WeightSpaceEncoder(nn.Module):
    """Base class: holds the spec, ``out_dim``, ``invariant`` and the rebuild config.

    Subclasses set the class attributes ``name``, ``description`` and ``invariant``,
    call :meth:`_record` with their keyword arguments, and implement :meth:`encode`.
    """

    name: str = ""
    description: str = ""
    invariant: bool = False
    min_layers: int = 1
    #: ``encode`` also needs the raw (unnormalized) weights, e.g. to evaluate the INR at probe
    #: coordinates; callers pass them as ``encoder(normalized_ws, raw=ws)`` (EmbeddingModel does)
    uses_raw_weights: bool = False
    #: embed the canonical form of the weights under the neuron-wise sign / scale symmetries
    #: (:mod:`ssl_ws.models.canonical`); applied by :func:`encode_weights` before the normalizer
    canonical: bool = False

    def __init__(self, spec: Union[INRSpec, Mapping], out_dim: int):
        super().__init__()
        spec = as_spec(spec)
        if spec.n_layers < self.min_layers:
            raise SslWsError(
                f"encoder {self.name!r} needs INRs with at least {self.min_layers} linear layers, "
                f"got {spec.layer_sizes}"
            )
        _positive("out_dim", out_dim)
        self.spec = spec
        self.out_dim = int(out_dim)
        self._hparams: Dict[str, Any] = {}

    def _record(self, **hparams) -> None:
        self._hparams = dict(hparams)

    @property
    def config(self) -> Dict[str, Any]:
        """``{"name": ..., **kwargs}``: ``build_encoder(**{**config, "spec": spec})`` rebuilds it."""
        return {"name": self.name, **self._hparams}

    def check_input(self, ws: WeightSpace) -> None:
        if not isinstance(ws, WeightSpace):
            raise SslWsError(f"encoder {self.name!r} takes a WeightSpace, got {type(ws).__name__}")
        if ws.spec.layer_sizes != self.spec.layer_sizes:
            raise SslWsError(
                f"encoder {self.name!r} was built for layer sizes {self.spec.layer_sizes}, "
                f"got INRs with {ws.spec.layer_sizes}"
            )

    def forward(self, ws: WeightSpace, raw: WeightSpace = None) -> Tensor:
        """Embeddings ``[B, out_dim]`` of (normalized) weights ``ws``; ``raw``: the same INRs
        unnormalized, needed by encoders that evaluate the INR (``uses_raw_weights``)."""
        self.check_input(ws)
        if self.training and len(ws) < 2 and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.modules()):
            raise SslWsError(f"encoder {self.name!r} uses batch norm: training mode needs at least 2 INRs per batch "
                             f"(got {len(ws)}); call .eval() to embed single INRs")
        dtype = next(self.parameters()).dtype
        if ws.dtype != dtype:
            ws = ws.to(dtype=dtype)
        if self.uses_raw_weights:
            if raw is None:
                raise SslWsError(f"encoder {self.name!r} evaluates the INRs at probe coordinates: call it as "
                                 f"encoder(normalized_ws, raw=ws) with the unnormalized weights (EmbeddingModel does)")
            self.check_input(raw)
            return self.encode(ws, raw=raw.to(dtype=dtype) if raw.dtype != dtype else raw)
        return self.encode(ws)

    def encode(self, ws: WeightSpace) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"spec={self.spec.layer_sizes}, out_dim={self.out_dim}, invariant={self.invariant}"


def encode_weights(encoder: "WeightSpaceEncoder", normalizer, ws: WeightSpace) -> Tensor:
    """``encoder(normalizer(ws), raw=ws)``, on ``canonicalize(ws)`` when the encoder is
    ``canonical``: the one path from raw weights to an embedding (training and export)."""
    if encoder.canonical:
        from .canonical import canonicalize

        ws = canonicalize(ws)
    return encoder(normalizer(ws), raw=ws)


def _positive(name: str, value, allow_zero: bool = False) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise SslWsError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer, got {value!r}")


def _boolean(name: str, value) -> None:
    if not isinstance(value, bool):
        raise SslWsError(f"{name} must be true or false, got {value!r}")


def _choice(name: str, value, choices) -> None:
    if value not in choices:
        raise SslWsError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def _probability(name: str, value) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= float(value) < 1.0:
        raise SslWsError(f"{name} must be a number in [0, 1), got {value!r}")


def mlp(in_dim: int, hidden: int, out_dim: int, n_layers: int, dropout: float = 0.0) -> nn.Sequential:
    """``n_layers`` linear layers with ReLU (and dropout) between them; ``n_layers=1`` is linear."""
    layers = []
    d = in_dim
    for _ in range(n_layers - 1):
        layers += [nn.Linear(d, hidden), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        d = hidden
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)
