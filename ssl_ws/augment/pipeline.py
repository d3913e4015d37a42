"""A training loop's augmentation: per-view transforms and (optionally) MixUp, in one call.

Like torchvision v2's batch transforms (``MixUp``, ``CutMix``), a :class:`Pipeline`
returns what it was given: ``pipeline(ws, g)`` gives the augmented batch,
``pipeline(ws, g, labels=y)`` gives ``(ws, soft_y)``::

    aug = preset("paper", mixup="aligned", num_classes=10)   # = preset("paper+mixup", ...)
    ws, soft = aug(ws, g, labels=y)           # per-view transforms, then MixUp in the batch
    view = aug(ws, g)                         # label-free (self-supervision)
    view = aug(fit_a, g, partner=fit_b)       # partner "view": mix two fits, then transform

Order. The MixUp partners ``"batch"`` and ``"self"`` mix the *transformed* batch; the
partner ``"view"`` (another fit of the same object, given as ``partner``) is mixed
first, so each mixed view is then augmented. ``make_params`` / ``apply_params`` are
the per-view part's: MixUp draws partners from the whole batch, so it is not a
per-INR transform.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

from ..errors import SslWsError
from .mixup import MixUp
from .transforms import Compose, Identity, Transform

__all__ = ["Pipeline"]


class Pipeline(Transform):
    """``per_view`` (a :class:`Transform`, or a list of them composed in order) and an
    optional ``mixup`` (:class:`~ssl_ws.augment.mixup.MixUp` or ``None``), applied in one
    call (see the module docstring). ``name``: the preset's name, if any.
    """

    summary = "per-view transforms and (optionally) MixUp"

    def __init__(self, per_view: Union[Transform, Sequence[Transform]], mixup: Optional[MixUp] = None, name: Optional[str] = None):
        if isinstance(per_view, (list, tuple)):
            per_view = Compose(per_view)
        if not isinstance(per_view, Transform):
            raise SslWsError(f"Pipeline: per_view must be a Transform or a list of them, got {per_view!r}")
        if mixup is not None and not isinstance(mixup, MixUp):
            raise SslWsError(f"Pipeline: mixup must be a MixUp or None, got {mixup!r}")
        self.per_view = per_view
        self.mixup = mixup
        self.name = name

    @property
    def is_identity(self) -> bool:
        """True when the call returns its input unchanged and draws nothing (no transform, no MixUp):
        a training step then needs no generator."""
        pv = self.per_view
        return self.mixup is None and (isinstance(pv, Identity) or (
            isinstance(pv, Compose) and all(isinstance(t, Identity) for t in pv.transforms)))

    def __call__(self, ws, generator=None, labels=None, partner=None):
        """The augmented batch, or ``(batch, labels)`` when ``labels`` are given (soft labels
        ``[B, C]`` mixed with the weights; unchanged without MixUp). ``partner``: the batch
        each INR is mixed with (another fit of each object), for the partner ``"view"``."""
        mix = self.mixup
        if partner is not None and mix is not None and mix.partner == "view":
            ws, labels = mix.mix(ws, labels, generator=generator, partner_ws=partner)
            ws = self.per_view(ws, generator)
        else:
            ws = self.per_view(ws, generator)
            if mix is not None:
                ws, labels = mix.mix(ws, labels, generator=generator)
        return ws if labels is None else (ws, labels)

    def make_params(self, ws, generator=None):
        return self.per_view.make_params(ws, generator)

    def apply_params(self, ws, params):
        return self.per_view.apply_params(ws, params)

    def __repr__(self) -> str:
        name = f"{self.name!r}, " if self.name is not None else ""
        return f"Pipeline({name}per_view={self.per_view!r}, mixup={self.mixup!r})"
