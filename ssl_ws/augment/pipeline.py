"""A training loop's augmentation: per-view transforms, then (optionally) MixUp.

MixUp mixes INRs with each other (with another INR of the batch, another view,
or an augmented copy), so it is not a per-view :class:`~ssl_ws.augment.transforms.Transform`.
A :class:`Pipeline` holds the two side by side; :func:`~ssl_ws.augment.presets.preset`
returns one::

    aug = preset("paper+mixup", num_classes=10)   # Pipeline(per_view=Compose([...]), mixup=MixUp(...))
    ws = aug(ws, generator=g)                     # the per-view transforms only: never mixes
    if aug.mixup is not None:
        ws, soft_labels = aug.mixup.mix(ws, labels, generator=g)          # supervised
        # or: aug.mixup.mix(view1, generator=g, partner_ws=view2)          # positive pair
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

from ..errors import SslWsError
from .mixup import MixUp
from .transforms import Compose, Transform

__all__ = ["Pipeline"]


class Pipeline(Transform):
    """``per_view`` (a :class:`Transform`, or a list of them composed in order) and an
    optional ``mixup`` (:class:`~ssl_ws.augment.mixup.MixUp` or ``None``) the training
    loop applies after it.

    A Pipeline is itself a Transform of its per-view part: calling it, and its
    ``make_params`` / ``apply_params``, never mix. ``name``: the preset's name, if any.
    """

    summary = "per-view transforms, then (optionally) a MixUp the training loop applies"

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

    def __call__(self, ws, generator=None):
        return self.per_view(ws, generator)

    def make_params(self, ws, generator=None):
        return self.per_view.make_params(ws, generator)

    def apply_params(self, ws, params):
        return self.per_view.apply_params(ws, params)

    def __repr__(self) -> str:
        name = f"{self.name!r}, " if self.name is not None else ""
        return f"Pipeline({name}per_view={self.per_view!r}, mixup={self.mixup!r})"
