"""Encoders by name, so that a config can say ``encoder: dwsnet`` and ``hidden: 16``.

    enc = build_encoder("dwsnet", spec, hidden=16, n_layers=3)
    enc.config                     # {"name": "dwsnet", "hidden": 16, ...}: rebuilds it
    build_encoder(**{**enc.config, "spec": spec})
"""

from __future__ import annotations

import inspect
from typing import Dict, List, Mapping, Type, Union

from ..errors import SslWsError
from ..weights import INRSpec
from .base import WeightSpaceEncoder, as_spec, count_parameters
from .dwsnet import DWSNet
from .mlp import FlatMLP
from .neural_graph import NeuralGraphTransformer
from .nfn import NFN
from .pixels import PixelsCNN, PixelsLinear
from .statnet import StatNet

ENCODERS: Dict[str, Type[WeightSpaceEncoder]] = {
    cls.name: cls for cls in (DWSNet, FlatMLP, NFN, NeuralGraphTransformer, StatNet, PixelsLinear, PixelsCNN)
}


def register_encoder(cls: Type[WeightSpaceEncoder], *, replace: bool = False) -> Type[WeightSpaceEncoder]:
    """Make ``cls`` buildable by name (``encoder.name=<cls.name>`` in a config); usable as a class
    decorator. A new encoder is one file: a :class:`WeightSpaceEncoder` subclass with ``name``,
    ``description`` and ``invariant``, ``_record(**kwargs)`` in ``__init__`` and ``encode(ws)``
    (ARCHITECTURE.md; tests/test_recipes.py registers a toy one)."""
    if not (isinstance(cls, type) and issubclass(cls, WeightSpaceEncoder)):
        raise SslWsError(f"register_encoder takes a WeightSpaceEncoder subclass, got {cls!r}")
    if not cls.name:
        raise SslWsError(f"{cls.__name__} has no class attribute 'name' to register it under")
    if cls.name in ENCODERS and ENCODERS[cls.name] is not cls and not replace:
        raise SslWsError(f"an encoder named {cls.name!r} is registered already ({ENCODERS[cls.name].__name__}); "
                         "pass replace=True to replace it")
    ENCODERS[cls.name] = cls
    return cls


def list_encoders() -> Dict[str, str]:
    """Encoder name -> one-line description."""
    return {name: cls.description for name, cls in ENCODERS.items()}


def encoder_options(name: str) -> Dict[str, object]:
    """The keyword arguments an encoder takes and their defaults."""
    cls = _lookup(name)
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]  # self, spec
    return {p.name: p.default for p in params}


def _lookup(name: str) -> Type[WeightSpaceEncoder]:
    if name not in ENCODERS:
        raise SslWsError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
    return ENCODERS[name]


def build_encoder(name: str, spec: Union[INRSpec, Mapping], **kwargs) -> WeightSpaceEncoder:
    """Build encoder ``name`` for INRs of ``spec`` (an INRSpec or its dict form).

    Unknown names and options raise :class:`~ssl_ws.errors.SslWsError` with the valid
    choices; so do invalid values.
    """
    options = encoder_options(name)
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise SslWsError(f"unknown option(s) {unknown} for encoder {name!r}; valid: {sorted(options)}")
    return _lookup(name)(as_spec(spec), **kwargs)


def describe_encoders(spec: Union[INRSpec, Mapping]) -> List[Dict[str, object]]:
    """Name, description, invariance and parameter count of every encoder at its defaults."""
    rows = []
    for name in ENCODERS:
        enc = build_encoder(name, spec)
        rows.append(dict(name=name, description=enc.description, invariant=enc.invariant,
                         parameters=count_parameters(enc), out_dim=enc.out_dim))
    return rows
