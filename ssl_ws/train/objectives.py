"""Self-supervised objectives by name: ``ssl.objective=simclr`` in a pretraining config.

Built in: ``simclr`` (:mod:`.simclr`), ``vicreg`` and ``barlowtwins`` (:mod:`.decorrelation`),
``byol`` (:mod:`.momentum`). An objective is a :class:`~ssl_ws.train.base.WeightSpaceModule`
subclass built as ``cls(cfg, spec, encoder, normalizer)`` whose ``training_step`` turns a batch
of the run's :class:`~ssl_ws.train.datamodule.INRDataModule` into a loss; a two-view objective
subclasses :class:`~ssl_ws.train.two_views.TwoViewModule` (its views and step) and writes only
``pair_loss`` (a loss from ``lightly.loss``) and its ``OPTIONS`` (``ssl.options``). ``ssl-ws pretrain`` gives every objective the same data,
normalizer, online evaluation (kNN and linear probe), checkpoints and resume.

Register a new one with :func:`register_objective` (ARCHITECTURE.md; tests/test_recipes.py
registers one in a dozen lines). Built-in objectives are named here by import
path, so that reading a config does not import Lightning.
"""

from __future__ import annotations

import importlib
from typing import Dict, Type, Union

from ..errors import SslWsError

#: name -> the objective's class, or its "module:Class" path (imported when first used)
OBJECTIVES: Dict[str, Union[str, type]] = {
    "simclr": "ssl_ws.train.simclr:SimCLRModule",
    "vicreg": "ssl_ws.train.decorrelation:VICRegModule",
    "barlowtwins": "ssl_ws.train.decorrelation:BarlowTwinsModule",
    "byol": "ssl_ws.train.momentum:BYOLModule",
}


def register_objective(name: str, cls: type, *, replace: bool = False) -> type:
    """Make ``cls`` the objective ``ssl.objective=<name>`` of ``ssl-ws pretrain``."""
    from .base import WeightSpaceModule

    if not (isinstance(cls, type) and issubclass(cls, WeightSpaceModule)):
        raise SslWsError(f"an objective must be a WeightSpaceModule subclass, got {cls!r}")
    if name in OBJECTIVES and OBJECTIVES[name] is not cls and not replace:
        raise SslWsError(f"an objective named {name!r} is registered already; pass replace=True to replace it")
    OBJECTIVES[name] = cls
    return cls


def objective_class(name: str) -> Type:
    """The class of objective ``name`` (one-line error for an unknown name)."""
    if name not in OBJECTIVES:
        raise SslWsError(f"unknown ssl.objective {name!r}; choose one of {sorted(OBJECTIVES)}")
    target = OBJECTIVES[name]
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = OBJECTIVES[name] = getattr(importlib.import_module(module), attr)
    return target
