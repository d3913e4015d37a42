"""Tensor-level building blocks shared by the augment modules (the ground floor).

* Random draws from a ``torch.Generator`` (:func:`rand`, :func:`randn`,
  :func:`uniform`, :func:`sample_permutations`): drawn on the generator's device
  (the CPU for torch's global RNG, ``generator=None``) and moved to the batch's
  device, so one CPU generator seed gives the same numbers whatever the device.
  Only the ``make_params`` of :mod:`ssl_ws.augment.transforms` and
  :class:`~ssl_ws.augment.mixup.MixUp` draw; the kernels of
  :mod:`ssl_ws.augment.functional` never do.
* Per-INR gathers (:func:`gather_rows`, :func:`gather_cols`): the index work of a
  hidden-neuron permutation, used by :func:`ssl_ws.augment.functional.permute` and by
  weight matching (:mod:`ssl_ws.augment.align`).

Import graph of the package (no circle): ``primitives <- align <- functional <-
transforms <- mixup <- pipeline <- presets``.
"""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import Tensor

from ..errors import SslWsError
from ..weights import WeightSpace

__all__ = ["check_generator", "rand", "randn", "uniform", "sample_permutations", "gather_rows", "gather_cols"]


# ------------------------------------------------------------------------ random draws
def check_generator(generator) -> Optional[torch.Generator]:
    """``generator`` if it is a ``torch.Generator`` or ``None``; an error otherwise."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise SslWsError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


def draws_on_host(generator: Optional[torch.Generator]) -> bool:
    """Whether ``generator``'s draws are host data (a CPU generator, or torch's global one for ``None``):
    reading them then waits for no device."""
    return generator is None or generator.device.type == "cpu"


def _draw(fn, shape, generator: Optional[torch.Generator], device, dtype) -> Tensor:
    where = generator.device if generator is not None else torch.device("cpu")
    return fn(shape, generator=generator, device=where, dtype=dtype).to(device)


def rand(shape, generator: Optional[torch.Generator], device, dtype: Optional[torch.dtype] = None) -> Tensor:
    """Uniform [0, 1) of ``shape``, drawn on the generator's device, moved to ``device``."""
    return _draw(torch.rand, shape, generator, device, dtype)


def randn(shape, generator: Optional[torch.Generator], device, dtype: Optional[torch.dtype] = None) -> Tensor:
    """Standard normal of ``shape``, drawn on the generator's device, moved to ``device``."""
    return _draw(torch.randn, shape, generator, device, dtype)


def uniform(lo: float, hi: float, shape, generator: Optional[torch.Generator], device) -> Tensor:
    """``U(lo, hi)`` of ``shape`` (torch's default dtype) on ``device``."""
    return lo + (hi - lo) * rand(shape, generator, device)


def sample_permutations(ws: WeightSpace, generator: Optional[torch.Generator] = None) -> List[Tensor]:
    """Independent uniformly random permutations ``[B, h_i]`` of every hidden layer, per INR."""
    return [torch.argsort(rand((len(ws), h), generator, ws.device), dim=1) for h in ws.spec.hidden_sizes]


# ----------------------------------------------------------------------------- gathers
def gather_rows(w: Tensor, perm: Tensor) -> Tensor:
    """``w[b, perm[b, j], :]`` for ``w [B, n, m]``, ``perm [B, n]`` (one index_select: rows are contiguous)."""
    batch, n, m = w.shape
    offset = torch.arange(batch, device=w.device).unsqueeze(1) * n
    return w.reshape(batch * n, m).index_select(0, (perm + offset).reshape(-1)).view(batch, n, m)


def gather_cols(w: Tensor, perm: Tensor) -> Tensor:
    """``w[b, :, perm[b, j]]`` for ``w [B, n, m]``, ``perm [B, m]``."""
    return w.gather(2, perm.unsqueeze(1).expand(-1, w.shape[1], -1))
