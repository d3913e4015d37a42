"""Weight-space MixUp: plain, randomly permuted, and aligned by weight matching.

Shamsian et al., "Improved Generalization of Weight Space Networks via Augmentations"
(ICML 2024), Section 4: each INR ``a`` is mixed with a partner ``b``,

    theta = lam * theta_a + (1 - lam) * pi(theta_b),     y = lam * y_a + (1 - lam) * y_b

with ``lam ~ U(0, 1)`` (``alpha=None``) or ``Beta(alpha, alpha)`` per INR. ``pi`` by variant:
``"plain"`` the identity, ``"permute"`` a uniform random hidden-neuron permutation,
``"aligned"`` the weight-matching permutation of ``b`` onto ``a`` (:mod:`ssl_ws.augment.align`).

Partners: ``"batch"`` another INR of the batch (never itself), labels mixed; ``"view"`` the INR
at the same position of ``partner_ws`` given to :meth:`MixUp.mix` (e.g. another fit of the
object), labels ``partner_labels`` or the anchor's; ``"self"`` an augmented copy of the INR
(``transform``; default one random augmentation per INR) aligned back to it, label-free.

Labels: int64 ``[B]`` (``num_classes`` needed) or soft ``[B, C]``; returned soft, mixed by ``lam``.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
from torch import Tensor

from ..errors import SslWsError
from ..weights import WeightSpace
from . import functional as F
from .primitives import rand, sample_permutations
from .transforms import (
    Dropout,
    GaussianNoise,
    OneOf,
    QuantileDropout,
    RandomBiasShift,
    RandomRotate,
    RandomScale,
    RandomSignFlip,
    RandomTranslate,
)

__all__ = ["MixUp", "VARIANTS", "PARTNERS"]

VARIANTS = ("plain", "permute", "aligned")
PARTNERS = ("batch", "self", "view")


def default_self_transform():
    """One of the paper's single augmentations per INR (the "self re-basin" partner)."""
    return OneOf(
        [RandomTranslate(), RandomRotate(), RandomScale(), GaussianNoise(), Dropout(), QuantileDropout(), RandomSignFlip(), RandomBiasShift()]
    )


class MixUp:
    """Weight-space MixUp (see the module docstring).

    Args:
        variant: ``"plain"``, ``"permute"`` or ``"aligned"``.
        alpha: ``None`` for ``lam ~ U(0, 1)``; a positive number for ``Beta(alpha, alpha)``.
        partner: ``"batch"``, ``"self"`` or ``"view"`` (``"view"``: :meth:`mix` needs ``partner_ws``;
            the others are ignored when it gets one).
        num_classes: needed to mix integer labels.
        transform: the augmentation that makes the ``"self"`` partner (default: one
            random paper augmentation per INR).
        max_iter: weight-matching sweeps over the hidden layers for ``"aligned"`` (each sweep solves
            every layer's assignment once; the default, 2, ends near the converged alignment at about
            half its cost: ``benchmarks/align_solvers.py``).
    """

    def __init__(
        self,
        variant: str = "aligned",
        alpha: Optional[float] = None,
        partner: str = "batch",
        num_classes: Optional[int] = None,
        transform: Optional[Callable] = None,
        max_iter: int = 2,
    ):
        if variant not in VARIANTS:
            raise SslWsError(f"unknown MixUp variant {variant!r}; expected one of {VARIANTS}")
        if partner not in PARTNERS:
            raise SslWsError(f"unknown MixUp partner {partner!r}; expected one of {PARTNERS}")
        if alpha is not None and not float(alpha) > 0:
            raise SslWsError(f"MixUp alpha must be positive (or None for U(0, 1)), got {alpha}")
        if transform is not None and not callable(transform):
            raise SslWsError(f"MixUp transform {transform!r} is not callable")
        self.variant = variant
        self.alpha = None if alpha is None else float(alpha)
        self.partner = partner
        self.num_classes = num_classes
        self.transform = transform
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise SslWsError(f"MixUp max_iter must be a whole number >= 1, got {max_iter!r}")
        self.max_iter = max_iter

    def __repr__(self) -> str:
        return f"MixUp(variant={self.variant!r}, alpha={self.alpha!r}, partner={self.partner!r})"

    # ------------------------------------------------------------------ pieces
    def sample_lam(self, batch: int, generator: Optional[torch.Generator] = None, device=None) -> Tensor:
        """``lam [B]`` (float32, on ``device``) from U(0, 1) or Beta(alpha, alpha), drawn from ``generator``.
        U(0, 1) is drawn where the generator is; Beta's inverse CDF is scipy's, on the host."""
        device = device if device is not None else "cpu"
        if self.alpha is None:
            return rand((batch,), generator, device)
        from scipy.special import betaincinv  # inverse CDF keeps it reproducible from a torch.Generator

        u = rand((batch,), generator, "cpu").double()
        lam = torch.from_numpy(np.asarray(betaincinv(self.alpha, self.alpha, u.numpy()), dtype=np.float64))
        return lam.float().to(device)

    def _soft(self, labels: Optional[Tensor], batch: int, device) -> Optional[Tensor]:
        if labels is None:
            return None
        labels = torch.as_tensor(labels, device=device)
        if labels.dim() == 1 and not labels.is_floating_point():
            if self.num_classes is None:
                raise SslWsError("MixUp needs num_classes to mix integer labels (or pass soft labels [B, C])")
            if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
                raise SslWsError(f"labels must lie in [0, {self.num_classes}), got {int(labels.min())}..{int(labels.max())}")
            labels = torch.nn.functional.one_hot(labels.long(), self.num_classes).float()
        elif labels.dim() != 2:
            raise SslWsError(f"labels must be int64 [B] or soft [B, C], got shape {tuple(labels.shape)} ({labels.dtype})")
        if labels.shape[0] != batch:
            raise SslWsError(f"labels have {labels.shape[0]} rows for a batch of {batch}")
        return labels.float()

    def partner_index(self, batch: int, generator: Optional[torch.Generator] = None, device=None) -> Tensor:
        """For each INR ``i`` a random other INR ``j != i`` of the batch (uniformly), on ``device``."""
        if batch < 2:
            raise SslWsError("MixUp with partner='batch' needs at least 2 INRs in the batch")
        device = device if device is not None else "cpu"
        offset = 1 + torch.floor(rand((batch,), generator, device) * (batch - 1)).long().clamp_(max=batch - 2)
        return (torch.arange(batch, device=device) + offset) % batch

    # --------------------------------------------------------------------- mix
    def mix(
        self,
        ws: WeightSpace,
        labels: Optional[Tensor] = None,
        generator: Optional[torch.Generator] = None,
        partner_ws: Optional[WeightSpace] = None,
        partner_labels: Optional[Tensor] = None,
        return_lam: bool = False,
    ):
        """Mix every INR of ``ws`` with its partner.

        Returns ``(ws_mixed, soft_labels)`` (``soft_labels`` is ``None`` without
        ``labels``), or ``(ws_mixed, soft_labels, lam)`` with ``return_lam``.
        """
        if not isinstance(ws, WeightSpace):
            raise SslWsError(f"MixUp expects a WeightSpace, got {type(ws).__name__}")
        batch, device = len(ws), ws.device
        soft = self._soft(labels, batch, device)
        if partner_ws is not None:
            if not isinstance(partner_ws, WeightSpace) or len(partner_ws) != batch:
                raise SslWsError(f"partner_ws must be a WeightSpace of the same batch size ({batch})")
            partner = partner_ws.to(device)
            soft_b = self._soft(partner_labels, batch, device) if partner_labels is not None else soft
            if soft is None and soft_b is not None:
                raise SslWsError("partner_labels given without labels")
        elif self.partner == "view":
            raise SslWsError("MixUp with partner='view' mixes two fits of one object: it needs the other fit "
                             "(ssl.positives=two_views)")
        elif self.partner == "batch":
            idx = self.partner_index(batch, generator, device)
            partner = ws[idx]
            soft_b = soft[idx] if soft is not None else None
        else:  # "self"
            transform = self.transform or default_self_transform()
            partner = transform(ws, generator)
            soft_b = soft

        if self.variant == "permute":
            partner = F.permute(partner, sample_permutations(partner, generator))
        elif self.variant == "aligned":
            partner = F.align(ws, partner, max_iter=self.max_iter)

        lam = self.sample_lam(batch, generator, device)
        mixed = F.mixup(ws, partner, lam.to(ws.dtype))
        out_labels = None
        if soft is not None:
            l = lam.unsqueeze(1).to(soft.dtype)
            out_labels = l * soft + (1.0 - l) * soft_b
        return (mixed, out_labels, lam) if return_lam else (mixed, out_labels)

    __call__ = mix
