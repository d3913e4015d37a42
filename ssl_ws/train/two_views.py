"""What every two-view self-supervised objective shares: the pair of views and the step.

A subclass supplies ``pair_loss(v_a, v_b)`` on the views ``(x_a, x_b)`` of one object. Positives
(``ssl.positives``): ``same_fit`` -- two augmentations of the same fitted INR; ``two_views`` --
one augmentation each of two different fits of the object (multi-view data, Shamsian et al.,
ICML 2024, or :mod:`ssl_ws.inr.refit`), each view a MixUp of the two fits with
``augment.mixup_partner=view``. Each view goes through its :class:`~ssl_ws.augment.Pipeline`
(``augment.preset``, ``augment.preset2``), label-free.

Hyperparameters live in ``ssl.options``: a subclass declares them with defaults in ``OPTIONS``
and reads them with :meth:`TwoViewModule.option`; unknown keys are refused
(:func:`check_options`) before a run directory exists.
"""

from __future__ import annotations

import difflib
import math
from typing import Dict, Mapping, Tuple

import torch

from ..augment import TwoViews, preset
from ..errors import SslWsError
from ..weights import WeightSpace
from .base import WeightSpaceModule


def train_unit(positives: str) -> str:
    """The sampling unit of ``ssl.positives``: an object with two of its fits (``two_views``) or one row."""
    return "pairs" if positives == "two_views" else "rows"


def check_options(objective: type, options: Mapping, name: str = None) -> Dict:
    """``OPTIONS`` of ``objective`` updated by ``options`` (``ssl.options``); one line for an unknown key
    or a value of the wrong kind."""
    known = dict(getattr(objective, "OPTIONS", {}))
    out = dict(known)
    label = name or getattr(objective, "__name__", "objective")
    for key, value in dict(options or {}).items():
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"; did you mean 'ssl.options.{close[0]}'?" if close else \
                f"; {label!r} takes {sorted(known) or 'no options'}"
            raise SslWsError(f"unknown option 'ssl.options.{key}' for objective {label!r}{hint}")
        default = known[key]
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise SslWsError(f"ssl.options.{key} must be a finite non-negative number, got {value!r}")
            if isinstance(default, int) and not float(value).is_integer():
                raise SslWsError(f"ssl.options.{key} must be a whole number, got {value!r}")
            hi = dict(getattr(objective, "OPTION_MAX", {})).get(key)
            if hi is not None and value > hi:
                raise SslWsError(f"ssl.options.{key} must be at most {hi}, got {value!r}")
            value = type(default)(value)
        out[key] = value
    return out


class TwoViewModule(WeightSpaceModule):
    """Encoder + an objective on two views of every training object (see module docstring).

    Subclasses set ``projection`` and ``criterion`` (or override :meth:`pair_loss`) and may declare
    ``OPTIONS``.
    """

    #: option name -> default; the values of a run come from ``ssl.options`` (numbers: finite, >= 0)
    OPTIONS: Dict[str, object] = {}
    #: option name -> the largest value it may take
    OPTION_MAX: Dict[str, float] = {}

    def __init__(self, cfg, spec, encoder, normalizer):
        super().__init__(cfg, spec, encoder, normalizer, train_unit(cfg.ssl.positives))
        ssl = self.cfg.ssl
        self.options = check_options(type(self), ssl.options, ssl.objective)
        acfg = self.cfg.augment
        t1, t2 = (preset(name, alpha=acfg.mixup_alpha, mixup=acfg.mixup, partner=acfg.mixup_partner)
                  for name in (acfg.preset, acfg.preset2 or acfg.preset))
        self.views = TwoViews(t1, t2)

    def option(self, name: str):
        return self.options[name]

    # ----------------------------------------------------------------- views
    def make_views(self, batch: Dict, generator: torch.Generator) -> Tuple[WeightSpace, WeightSpace]:
        """The two augmented views of the batch's objects (raw weights)."""
        if self.train_unit == "rows":
            return self.views(self.batch_weights(batch), generator)
        a, b = self.batch_weights(batch, "params"), self.batch_weights(batch, "params2")
        return self.views.t1(a, generator, partner=b), self.views.t2(b, generator, partner=a)

    # ------------------------------------------------------------------ step
    def pair_loss(self, v1: WeightSpace, v2: WeightSpace) -> Dict[str, torch.Tensor]:
        """``{"loss": scalar, ...}`` of one batch of view pairs; other entries (detached) ride
        along in the step's outputs for callbacks. The default: ``criterion(z1, z2)`` of the projections
        ``z = projection(encode(v))`` (a subclass sets ``projection`` and ``criterion``), with ``z1``, ``z2``
        riding along (callbacks.FirstStepDump)."""
        z1 = self.projection(self.encode(v1))
        z2 = self.projection(self.encode(v2))
        return {"loss": self.criterion(z1, z2), "z1": z1.detach(), "z2": z2.detach()}

    def training_step(self, batch: Dict, batch_idx: int):
        v1, v2 = self.make_views(batch, self.generator_for(batch))
        out = self.pair_loss(v1, v2)
        n = len(v1)
        self.log_train(n, step={"loss": out["loss"]}, epoch={"global_batch": float(n * self.trainer.world_size)})
        self.mark_consumed(batch)
        return out
