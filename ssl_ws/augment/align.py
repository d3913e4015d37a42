"""Weight matching: permute one batch of INRs to match another (Git Re-Basin).

Ainsworth, Hayase & Srinivasa, "Git Re-Basin: Merging Models modulo Permutation
Symmetries" (ICLR 2023), Algorithm 1. For an anchor ``a`` and a partner ``b`` of
one MLP architecture, find hidden-neuron permutations ``P_1 .. P_{L-1}`` maximising

    sum_i < W_i^a, P_i W_i^b P_{i-1}^T >  +  < b_i^a, P_i b_i^b >

which is the same as minimising ``||a - pi(b)||_2`` (permutations preserve norms).
Coordinate descent: for one hidden layer ``i`` with the others fixed the objective
is linear in ``P_i``, ``<P_i, C_i>`` with

    C_i = W_i^a (W_i^b P_{i-1}^T)^T + b_i^a (b_i^b)^T + (W_{i+1}^a)^T (P_{i+1} W_{i+1}^b)

a linear assignment problem, solved exactly with
``scipy.optimize.linear_sum_assignment``. Sweeps over the layers repeat until no
layer improves (a layer is re-solved only when a neighbouring permutation has
changed since its last solve; when every row's best column is distinct, that is
the assignment and scipy is skipped). Every accepted step strictly increases the objective, so the
distance to the anchor never grows (starting from the identity).

Batched: the cost matrices of all ``B`` pairs are built with one batched matmul
per term (in float64); only the ``[h, h]`` assignment problems are solved one
pair at a time (scipy has no batched solver), and only for pairs that have not
converged yet.

:func:`ssl_ws.augment.functional.align` applies the permutations found here
(``permute(partner, weight_matching(anchor, partner))``).
"""

from __future__ import annotations

from typing import Callable, List

import numpy as np
import torch
from torch import Tensor

from ..errors import SslWsError
from ..weights import WeightSpace, _check_same_spec
from .primitives import gather_cols, gather_rows

__all__ = ["weight_matching", "exact_assignment"]


def exact_assignment(cost: Tensor) -> np.ndarray:
    """``argmax_P <P, C_k>`` of every ``[h, h]`` problem of ``cost [k, h, h]``: the column of each row
    (``[k, h]``). Where every row's best column is distinct, that is the assignment; the others are
    solved one by one with scipy's ``linear_sum_assignment``."""
    best = cost.argmax(dim=2)
    rows = torch.arange(cost.shape[1], device=cost.device)
    easy = (best.sort(dim=1).values == rows).all(dim=1).cpu().numpy()
    new = best.cpu().numpy()
    if easy.all():
        return new
    from scipy.optimize import linear_sum_assignment  # here: scipy takes ~1 s to import

    cost_np = cost.cpu().numpy()
    for k in np.flatnonzero(~easy):  # the only per-pair step
        new[k] = linear_sum_assignment(cost_np[k], maximize=True)[1]
    return new


def weight_matching(anchor: WeightSpace, partner: WeightSpace, max_iter: int = 100, tol: float = 1e-12,
                    solve: Callable[[Tensor], object] = exact_assignment) -> List[Tensor]:
    """Permutations that align ``partner`` to ``anchor``, pair by pair.

    Args:
        anchor, partner: batches of one size and spec (pair ``b`` is ``anchor[b]``, ``partner[b]``).
        max_iter: maximum number of sweeps over the hidden layers.
        tol: relative improvement a step must make to be accepted.
        solve: the batched assignment solver, ``cost [k, h, h] (float64) -> [k, h]`` (array or tensor);
            :func:`exact_assignment` by default (``benchmarks/align_solvers.py`` passes others).

    Returns:
        One LongTensor ``[B, h_i]`` per hidden layer, in the convention of
        :func:`ssl_ws.augment.functional.permute` (new neuron ``j`` = old neuron ``perm[j]``),
        so ``permute(partner, perms)`` is the aligned partner.
    """
    if not isinstance(anchor, WeightSpace) or not isinstance(partner, WeightSpace):
        raise SslWsError("weight matching needs two WeightSpaces")
    _check_same_spec(anchor.spec, partner.spec, "weight matching")
    if len(anchor) != len(partner):
        raise SslWsError(f"weight matching needs batches of one size, got {len(anchor)} and {len(partner)}")
    if anchor.device != partner.device:
        raise SslWsError(f"weight matching needs both batches on one device, got {anchor.device} and {partner.device}")
    spec = anchor.spec
    batch, device = len(anchor), anchor.device
    n_hidden = len(spec.hidden_sizes)
    perms = [torch.arange(h, device=device).expand(batch, h).clone() for h in spec.hidden_sizes]
    if n_hidden == 0 or batch == 0:
        return perms
    wa = [w.detach().double() for w in anchor.weights]
    ba = [b.detach().double() for b in anchor.biases]
    wb = [w.detach().double() for w in partner.weights]
    bb = [b.detach().double() for b in partner.biases]
    last = spec.n_layers - 1
    # dirty[i][b]: layer i of pair b must be re-solved (a neighbouring permutation
    # changed since its last solve); a layer whose neighbours are unchanged would
    # get the same cost matrix, for which its current permutation is optimal.
    dirty = [np.ones(batch, dtype=bool) for _ in range(n_hidden)]
    for _ in range(max_iter):
        if not any(d.any() for d in dirty):
            break
        for i in range(n_hidden):
            todo = np.flatnonzero(dirty[i])
            if todo.size == 0:
                continue
            sel = torch.from_numpy(todo).to(device)
            p_prev = perms[i - 1][sel] if i > 0 else None
            p_next = perms[i + 1][sel] if i + 1 < n_hidden else None
            w_in = wb[i][sel] if i == 0 else gather_cols(wb[i][sel], p_prev)
            w_out = wb[i + 1][sel] if i + 1 == last else gather_rows(wb[i + 1][sel], p_next)
            cost = torch.bmm(wa[i][sel], w_in.transpose(1, 2))
            cost.baddbmm_(wa[i + 1][sel].transpose(1, 2), w_out)
            cost.add_(ba[i][sel].unsqueeze(2) * bb[i][sel].unsqueeze(1))
            new = torch.as_tensor(solve(cost), device=device)
            old_val = cost.gather(2, perms[i][sel].unsqueeze(2)).sum(dim=(1, 2))
            new_val = cost.gather(2, new.unsqueeze(2)).sum(dim=(1, 2))
            changed = (new_val > old_val + tol * old_val.abs().clamp_min(1.0)).cpu().numpy()
            dirty[i][todo] = False
            if changed.any():
                moved = todo[changed]
                perms[i][torch.from_numpy(moved).to(device)] = new[torch.from_numpy(changed).to(device)]
                if i > 0:
                    dirty[i - 1][moved] = True
                if i + 1 < n_hidden:
                    dirty[i + 1][moved] = True
    return perms

