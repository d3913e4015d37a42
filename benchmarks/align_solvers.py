#!/usr/bin/env python
"""Batched assignment solvers for aligned MixUp's weight matching, measured against scipy (issue 34).

Weight matching (:func:`ssl_ws.augment.align.weight_matching`) solves, for every pair and hidden layer,
a linear assignment ``max_P <P, C>`` inside a coordinate descent over the layers; by default each
``[h, h]`` problem exactly (:func:`~ssl_ws.augment.align.exact_assignment`: scipy's
``linear_sum_assignment`` on the host). This benchmark runs that function with batched,
device-resident solvers passed as its ``solve``:

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
    from ssl_ws.augment.align import exact_assignment, weight_matching
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

    solvers = {"scipy (exact), to convergence: `F.align`": exact_assignment,
               "scipy (exact), 2 sweeps: MixUp's default": (exact_assignment, 2),
               "scipy (exact), 1 sweep": (exact_assignment, 1),
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
        weight_matching(a[:4], b[:4], max_iter=sweeps, solve=solve)  # warm-up (kernels, imports)
        sync()
        t = time.perf_counter()
        perms = weight_matching(a, b, max_iter=sweeps, solve=solve)
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
