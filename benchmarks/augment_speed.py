"""Speed of batched weight-space augmentation vs. a per-sample loop.

Two workloads on a batch of INRs (default 256 of 2 -> 32 -> 32 -> 1):

1. the paper's augmentation pipeline -- translate, rotate, Gaussian noise, sign
   flip, neuron permutation (``ssl_ws.augment.preset("paper")``);
2. aligned MixUp -- weight matching (Git Re-Basin) of each INR to a partner of the
   batch, then interpolation (``ssl_ws.augment.MixUp("aligned")``).

(a) is a lean per-sample loop that applies the same math to one INR at a time on
plain per-layer tensors, the way a data set's ``__getitem__`` does it today (for
MixUp: one weight matching per pair, scipy's linear_sum_assignment per layer,
as in both implementations); (b) is ssl_ws, one call on the whole batch.

    python benchmarks/augment_speed.py [--n 256] [--repeats 5] [--device cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ssl_ws import INRSpec, WeightSpace
from ssl_ws.augment import MixUp, preset


def make_batch(spec: INRSpec, n: int, seed: int = 0) -> WeightSpace:
    """SIREN-like random INRs (first layer U(+-1/d), others U(+-sqrt(6/d)/w0))."""
    g = torch.Generator().manual_seed(seed)
    ws, bs = [], []
    for i, (o, d) in enumerate(spec.weight_shapes):
        bound = 1.0 / d if i == 0 else math.sqrt(6.0 / d) / spec.w0
        ws.append((torch.rand(n, o, d, generator=g) * 2 - 1) * bound)
        bs.append((torch.rand(n, o, generator=g) * 2 - 1) * bound)
    return WeightSpace(ws, bs, spec)


# --------------------------------------------------------------------- (a) per sample
def paper_one(weights, biases, w0, g):
    """translate 0.25, rotate 30 deg, noise 0.32 std, sign flip 0.5, permutation -- one INR."""
    weights, biases = list(weights), list(biases)
    t = (torch.rand(2, generator=g) * 2 - 1) * 0.25
    biases[0] = biases[0] - weights[0] @ t
    a = (torch.rand(1, generator=g).item() * 2 - 1) * math.radians(30)
    r_inv = torch.tensor([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    weights[0] = weights[0] @ r_inv
    weights = [w + 0.32 * w.std(correction=0) * torch.randn(w.shape, generator=g) for w in weights]
    biases = [b + 0.32 * b.std(correction=0) * torch.randn(b.shape, generator=g) for b in biases]
    for i in range(len(weights) - 1):
        s = torch.where(torch.rand(biases[i].shape[0], generator=g) < 0.5, -1.0, 1.0)
        weights[i] = weights[i] * s[:, None]
        biases[i] = biases[i] * s
        weights[i + 1] = weights[i + 1] * s[None, :]
    for i in range(len(weights) - 1):
        p = torch.randperm(biases[i].shape[0], generator=g)
        weights[i] = weights[i][p]
        biases[i] = biases[i][p]
        weights[i + 1] = weights[i + 1][:, p]
    return weights, biases


def match_one(wa, ba, wb, bb, max_iter=100):
    """Weight matching of one pair (same coordinate descent as ssl_ws.augment.align)."""
    n_hidden = len(wa) - 1
    perms = [np.arange(b.shape[0]) for b in ba[:-1]]
    for _ in range(max_iter):
        progress = False
        for i in range(n_hidden):
            w_in = wb[i] if i == 0 else wb[i][:, perms[i - 1]]
            w_out = wb[i + 1] if i + 1 == n_hidden else wb[i + 1][perms[i + 1]]
            cost = (wa[i] @ w_in.T + ba[i][:, None] * bb[i][None, :] + wa[i + 1].T @ w_out).numpy()
            _, col = linear_sum_assignment(cost, maximize=True)
            rows = np.arange(len(col))
            if cost[rows, col].sum() > cost[rows, perms[i]].sum() + 1e-12 * max(abs(cost[rows, perms[i]].sum()), 1.0):
                perms[i] = col
                progress = True
        if not progress:
            break
    wb, bb = list(wb), list(bb)
    for i, p in enumerate(perms):
        p = torch.from_numpy(p)
        wb[i], bb[i] = wb[i][p], bb[i][p]
        wb[i + 1] = wb[i + 1][:, p]
    return wb, bb


def mixup_one(wa, ba, wb, bb, g, max_iter):
    wa64, ba64 = [w.double() for w in wa], [b.double() for b in ba]
    wb_al, bb_al = match_one(wa64, ba64, [w.double() for w in wb], [b.double() for b in bb], max_iter)
    lam = torch.rand(1, generator=g).item()
    return [lam * x + (1 - lam) * y.float() for x, y in zip(wa, wb_al)], [lam * x + (1 - lam) * y.float() for x, y in zip(ba, bb_al)]


# ---------------------------------------------------------------------------- timing
def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="INRs per batch")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    parser.add_argument("--device", default="cpu", help="device of the batched path (the loop runs on CPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    spec = INRSpec((2, 32, 32, 1))
    ws = make_batch(spec, args.n)
    dev_ws = ws.to(args.device)
    per_inr = [([w[i] for w in ws.weights], [b[i] for b in ws.biases]) for i in range(args.n)]
    partner_idx = (torch.arange(args.n) + 1 + torch.randint(0, args.n - 1, (args.n,), generator=torch.Generator().manual_seed(1))) % args.n
    sync = (lambda: torch.cuda.synchronize()) if dev_ws.device.type == "cuda" else (lambda: None)

    print(f"# augment_speed: {args.n} INRs of {spec.describe()}, device {dev_ws.device}, torch threads {torch.get_num_threads()}")
    print(f"# command: python benchmarks/augment_speed.py --n {args.n} --repeats {args.repeats} --device {args.device}"
          + (f" --threads {args.threads}" if args.threads else ""))

    # 1. the paper pipeline
    pipeline = preset("paper")
    g = torch.Generator().manual_seed(0)
    loop_s = timed(lambda: [paper_one(w, b, spec.w0, g) for w, b in per_inr], args.repeats)

    def batched():
        pipeline(dev_ws, g)
        sync()

    ours_s = timed(batched, args.repeats)
    print(
        f"paper pipeline  (a) per-sample loop: {args.n / loop_s:10.0f} INRs/s   "
        f"(b) ssl_ws batched: {args.n / ours_s:10.0f} INRs/s   speed-up {loop_s / ours_s:6.1f}x"
    )

    # 2. aligned MixUp with a partner from the batch
    mix = MixUp("aligned")

    def loop_mix():
        for i in range(args.n):
            j = int(partner_idx[i])
            mixup_one(*per_inr[i], *per_inr[j], g, mix.max_iter)  # the same sweeps as the library

    loop_m = timed(loop_mix, max(1, args.repeats // 2))

    def batched_mix():
        mix.mix(dev_ws, generator=g)
        sync()

    ours_m = timed(batched_mix, args.repeats)
    print(
        f"aligned MixUp   (a) per-pair loop:   {args.n / loop_m:10.0f} pairs/s  "
        f"(b) ssl_ws batched: {args.n / ours_m:10.0f} pairs/s  speed-up {loop_m / ours_m:6.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
