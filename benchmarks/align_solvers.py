#!/usr/bin/env python
"""Batched assignment solvers for aligned MixUp's weight matching, measured against scipy (issue 34).

Weight matching (:mod:`ssl_ws.augment.align`) solves, for every pair and hidden layer, a linear
assignment ``max_P <P, C>`` inside a coordinate descent over the layers. The package solves each
``[h, h]`` problem exactly with scipy's ``linear_sum_assignment`` on the host. This benchmark runs
the same coordinate descent (every layer re-solved until no pair improves, each step accepted only
when it raises the objective) with batched, device-resident solvers in place of scipy:

* ``auction``: Bertsekas' auction (Jacobi bidding, eps-scaling 0.25 -> ``1e-6`` of the cost range,
  x8 per phase): exact to ``n * eps``;
* ``sinkhorn-K``: K log-domain Sinkhorn iterations with the temperature annealed 1 -> ``t1`` (of the
  cost's standard deviation), rounded by row argmax (greedy rounding of the plan where that is no
  permutation);
* ``greedy``: the largest remaining entry, ``h`` times;

and scipy's exact solver with the coordinate descent stopped after one or two sweeps over the layers.

It prints, per solver, milliseconds per batch of pairs and the mean squared distance
``||a - pi(b)||^2`` after alignment against scipy's (lower is better; "worse" counts pairs that end
farther than with scipy). Pairs: random training INRs of a store.

    python benchmarks/align_solvers.py --store /work/data/fmnist-1fit-small --pairs 128
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch


def coordinate_descent(anchor, partner, solve, tol=1e-12, max_sweeps=100):
    """The package's weight matching with ``solve(cost [k, h, h]) -> perm [k, h]`` as the solver."""
    from ssl_ws.augment.primitives import gather_cols, gather_rows

    spec, batch = anchor.spec, len(anchor)
    n_hidden, last = len(spec.hidden_sizes), spec.n_layers - 1
    dev = anchor.device
    perms = [torch.arange(h, device=dev).expand(batch, h).clone() for h in spec.hidden_sizes]
    wa, ba = [w.double() for w in anchor.weights], [b.double() for b in anchor.biases]
    wb, bb = [w.double() for w in partner.weights], [b.double() for b in partner.biases]
    dirty = [torch.ones(batch, dtype=torch.bool, device=dev) for _ in range(n_hidden)]
    for _ in range(max_sweeps):
        if not any(d.any() for d in dirty):
            break
        for i in range(n_hidden):
            sel = dirty[i].nonzero().squeeze(1)
            if sel.numel() == 0:
                continue
            w_in = wb[i][sel] if i == 0 else gather_cols(wb[i][sel], perms[i - 1][sel])
            w_out = wb[i + 1][sel] if i + 1 == last else gather_rows(wb[i + 1][sel], perms[i + 1][sel])
            cost = torch.bmm(wa[i][sel], w_in.transpose(1, 2))
            cost.baddbmm_(wa[i + 1][sel].transpose(1, 2), w_out)
            cost.add_(ba[i][sel].unsqueeze(2) * bb[i][sel].unsqueeze(1))
            new, cur = solve(cost), perms[i][sel]
            old_v = cost.gather(2, cur.unsqueeze(2)).sum((1, 2))
            new_v = cost.gather(2, new.unsqueeze(2)).sum((1, 2))
            better = new_v > old_v + tol * old_v.abs().clamp_min(1.0)
            dirty[i][sel] = False
            moved = sel[better]
            perms[i][moved] = new[better]
            for j in (i - 1, i + 1):
                if 0 <= j < n_hidden:
                    dirty[j][moved] = True
    return perms


def scipy_solve(cost):
    from scipy.optimize import linear_sum_assignment

    c = cost.cpu().numpy()
    return torch.stack([torch.from_numpy(linear_sum_assignment(m, maximize=True)[1]) for m in c]).to(cost.device)


def auction_solve(cost, eps_final=1e-6, factor=8.0):
    b, n, _ = cost.shape
    lo, hi = cost.amin((1, 2), keepdim=True), cost.amax((1, 2), keepdim=True)
    c = (cost - lo) / (hi - lo).clamp_min(1e-30)
    dev = c.device
    price = torch.zeros(b, n, dtype=c.dtype, device=dev)
    rows = torch.arange(n, device=dev).expand(b, n)
    eps = 0.25
    while True:
        owner = torch.full((b, n), -1, dtype=torch.long, device=dev)  # column -> row
        assign = torch.full((b, n), -1, dtype=torch.long, device=dev)  # row -> column
        while bool((assign < 0).any()):
            free = assign < 0
            top = (c - price.unsqueeze(1)).topk(2, dim=2)
            j = top.indices[..., 0]
            bid = price.gather(1, j) + top.values[..., 0] - top.values[..., 1] + eps
            bid = torch.where(free, bid, torch.full_like(bid, -1.0))
            best = torch.full((b, n), -1.0, dtype=c.dtype, device=dev).scatter_reduce(1, j, bid, "amax")
            wins = free & (bid == best.gather(1, j))
            winner = torch.full((b, n), n, dtype=torch.long, device=dev).scatter_reduce(
                1, j, torch.where(wins, rows, n), "amin")
            took = winner < n
            owner = torch.where(took, winner, owner)
            price = torch.where(took, best, price)
            held = owner >= 0
            assign = torch.full((b, n + 1), -1, dtype=torch.long, device=dev).scatter_(
                1, torch.where(held, owner, torch.full_like(owner, n)), rows)[:, :n]
        if eps <= eps_final:
            return assign
        eps = max(eps / factor, eps_final)


def greedy_solve(cost):
    b, n, _ = cost.shape
    dev = cost.device
    c, out, idx = cost.clone(), torch.empty(b, n, dtype=torch.long, device=dev), torch.arange(b, device=dev)
    for _ in range(n):
        k = c.flatten(1).argmax(1)
        r, col = k // n, k % n
        out[idx, r] = col
        c[idx, r, :] = float("-inf")
        c.scatter_(2, col.view(b, 1, 1).expand(b, n, 1), float("-inf"))
    return out


def sinkhorn_solve(cost, iters, t1):
    b, n, _ = cost.shape
    c = cost - cost.mean((1, 2), keepdim=True)
    c = c / c.std((1, 2), keepdim=True).clamp_min(1e-30)
    f, g = torch.zeros(b, n, 1, dtype=c.dtype, device=c.device), torch.zeros(b, 1, n, dtype=c.dtype, device=c.device)
    for k in range(iters):
        tau = t1 ** (k / max(iters - 1, 1))
        f = -tau * torch.logsumexp((c + g) / tau, dim=2, keepdim=True)
        g = -tau * torch.logsumexp((c + f) / tau, dim=1, keepdim=True)
    plan = c + f + g
    p = plan.argmax(2)
    ok = (p.sort(1).values == torch.arange(n, device=p.device)).all(1, keepdim=True)
    return torch.where(ok, p, greedy_solve(plan))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", required=True)
    p.add_argument("--pairs", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="where the pairs and the batched solvers live (scipy: the host)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from ssl_ws.augment import functional as F
    from ssl_ws.data import load_store

    store = load_store(args.store)
    rows = store.rows("train")
    args.pairs = min(args.pairs, len(rows))
    rng = np.random.default_rng(args.seed)
    a = store.weights(rng.choice(rows, args.pairs, replace=False), device=args.device)
    b = store.weights(rng.choice(rows, args.pairs, replace=False), device=args.device)

    def sync():
        if a.device.type == "cuda":
            torch.cuda.synchronize()

    def dist(x, y):
        return sum(((u - v) ** 2).flatten(1).sum(1) for u, v in zip(x.weights + x.biases, y.weights + y.biases))

    solvers = {"scipy (exact), to convergence: `F.align`": scipy_solve,
               "scipy (exact), 2 sweeps: MixUp's default": (scipy_solve, 2),
               "scipy (exact), 1 sweep": (scipy_solve, 1),
               "auction (exact to 1e-6)": auction_solve,
               "greedy": greedy_solve, "sinkhorn-20": lambda c: sinkhorn_solve(c, 20, 0.02),
               "sinkhorn-50": lambda c: sinkhorn_solve(c, 50, 0.005)}
    print(f"# {args.pairs} pairs of {store.spec.layer_sizes} INRs from {args.store}; {args.threads} thread(s), "
          f"{platform.processor() or platform.machine()}, device {args.device}, torch {torch.__version__}")
    print(f"# unaligned mean squared distance {float(dist(a, b).mean()):.5f}")
    print("| solver | ms per batch | mean distance after alignment | vs scipy | pairs worse than scipy |")
    print("|---|---|---|---|---|")
    ref = None
    for name, solve in solvers.items():
        solve, sweeps = solve if isinstance(solve, tuple) else (solve, 100)
        coordinate_descent(a[:4], b[:4], solve, max_sweeps=sweeps)  # warm-up (kernels, imports)
        sync()
        t = time.perf_counter()
        perms = coordinate_descent(a, b, solve, max_sweeps=sweeps)
        sync()
        ms = (time.perf_counter() - t) * 1000
        d = dist(a, F.permute(b, perms))
        ref = d if ref is None else ref
        worse = int((d > ref * (1 + 1e-9)).sum())
        print(f"| {name} | {ms:,.0f} | {float(d.mean()):.5f} | {float(d.mean() / ref.mean() - 1) * 100:+.2f}% | {worse} |")
    print(f"\n    python benchmarks/align_solvers.py --store {args.store} --pairs {args.pairs} --threads {args.threads} "
          f"--device {args.device}")


if __name__ == "__main__":
    main()
