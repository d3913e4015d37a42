"""INR-fitting throughput: per-INR nn.Module loop vs batched autograd vs ssl_ws's fitter.

Measures INR-steps per second (one Adam step of one INR) on 28x28 images (Fashion-MNIST
when installed, else scikit-learn digits upsampled to 28x28) for

  (a) a per-INR training loop: one ``nn.Sequential`` SIREN + ``torch.optim.Adam`` per image;
  (b) the straightforward batched version: per-layer ``[B, ...]`` leaf tensors, ``bmm``
      forward, ``loss.backward()``, ``torch.optim.Adam``;
  (c) ours: :func:`ssl_ws.inr.fit.fit_inrs` (hand-written batched backward, flat Adam).

All run a fixed number of steps with the early stop disabled, so they do the same work.
A second part fits to the 40 dB target: (b) with per-INR masking vs (c), which compacts
finished INRs out of the batch; it reports wall time for the same images.

GFLOP/s counts the matrix products only: 6 N sum(d_in d_out) per INR-step
(forward 2, backward 4; the elementwise sin/cos/Adam work is extra).

Run:  python benchmarks/fit_speed.py [--batch 256] [--steps 30] [--loop-inrs 8] [--device cpu] [--threads N]

On a CPU shared with other jobs, OpenMP threads that wait for each other make small
matrix products erratic; ``--threads 1`` (or OMP_NUM_THREADS=1) gives steadier figures.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import torch
from torch import nn

from ssl_ws.inr.fit import fit_inrs, init_weights, inr_keys
from ssl_ws.inr.render import image_coordinates
from ssl_ws.weights import INRSpec


def load_images(n: int) -> torch.Tensor:
    try:
        from ssl_ws.data.sources import load_source

        src = load_source("fashion-mnist", data_dir=os.environ.get("FMNIST_DIR"), limit=n)  # $FMNIST_DIR: a copy
        return torch.from_numpy(src.images[:n]).float()
    except Exception:  # noqa: BLE001 - fall back to the embedded data
        from sklearn.datasets import load_digits

        x = torch.tensor(load_digits().images[:n] / 16.0, dtype=torch.float32).unsqueeze(1)
        return nn.functional.interpolate(x, size=(28, 28), mode="bilinear", align_corners=True)


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


class Sine(nn.Module):
    def __init__(self, w0):
        super().__init__()
        self.w0 = w0

    def forward(self, x):
        return torch.sin(self.w0 * x)


def per_inr_loop(images, spec, steps, lr, device):
    """(a) one nn.Module + optimizer per INR, fitted one after the other."""
    coords = image_coordinates(images.shape[2], images.shape[3], device=device)
    keys = inr_keys(0, torch.arange(len(images)), torch.zeros(len(images), dtype=torch.int64))
    init = init_weights(spec, "siren", keys).to(device)
    sync(device)
    t0 = time.perf_counter()
    for i in range(len(images)):
        lin = spec.build_module().to(device)
        lin.load_state_dict(init.to_state_dict(i, prefix=""))
        layers = []
        for j, layer in enumerate(lin):
            layers.append(layer)
            if j < len(lin) - 1:
                layers.append(Sine(spec.w0))
        model = nn.Sequential(*layers)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        target = images[i].to(device).flatten(1).t()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = ((model(coords) + spec.output_offset - target) ** 2).mean()
            loss.backward()
            opt.step()
    sync(device)
    return time.perf_counter() - t0


def batched_autograd(images, spec, steps, lr, device, target_psnr=math.inf):
    """(b) batched bmm forward + autograd + torch.optim.Adam; early stop by masking."""
    b = len(images)
    coords = image_coordinates(images.shape[2], images.shape[3], device=device)
    keys = inr_keys(0, torch.arange(b), torch.zeros(b, dtype=torch.int64))
    init = init_weights(spec, "siren", keys).to(device)
    params = [t.clone().requires_grad_(True) for pair in zip(init.weights, init.biases) for t in pair]
    opt = torch.optim.Adam(params, lr=lr)
    target = images.to(device).flatten(2).transpose(1, 2)
    active = torch.ones(b, dtype=torch.bool, device=device)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        h = coords.expand(b, -1, -1)
        for li in range(spec.n_layers):
            w, bias = params[2 * li], params[2 * li + 1]
            h = torch.baddbmm(bias.unsqueeze(1), h, w.transpose(1, 2))
            if li < spec.n_layers - 1:
                h = torch.sin(spec.w0 * h)
        mse = ((h + spec.output_offset - target) ** 2).mean(dim=(1, 2))
        if math.isfinite(target_psnr):
            active = active & (-10 * torch.log10(mse.detach()) < target_psnr)
            if not bool(active.any()):
                break
        (mse * active).sum().backward()
        opt.step()  # masked rows have zero grad; Adam's moments still move them slightly
    sync(device)
    return time.perf_counter() - t0


def ours(images, spec, steps, lr, device, target_psnr=math.inf):
    sync(device)
    t0 = time.perf_counter()
    res = fit_inrs(images, spec, recipe="siren", steps=steps, lr=lr, target_psnr=target_psnr, device=device)
    sync(device)
    return time.perf_counter() - t0, res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=256, help="INRs fitted at once by (b) and (c)")
    p.add_argument("--steps", type=int, default=30, help="steps of the fixed-work comparison")
    p.add_argument("--loop-inrs", type=int, default=8, help="INRs fitted by the per-INR loop (a)")
    p.add_argument("--target-batch", type=int, default=128, help="images of the fit-to-40dB comparison (0: skip)")
    p.add_argument("--target-steps", type=int, default=1000)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for this run (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    spec = INRSpec((2, 32, 32, 1))
    images = load_images(max(args.batch, args.loop_inrs, args.target_batch))
    n_pts = images.shape[2] * images.shape[3]
    flops = 6 * n_pts * sum(o * i for o, i in spec.weight_shapes)
    print(f"device={args.device} threads={torch.get_num_threads()} torch={torch.__version__} "
          f"images={tuple(images.shape[1:])} spec=[{spec.describe()}]")

    # warm-up (allocator, kernels)
    ours(images[:8], spec, 3, args.lr, args.device)
    batched_autograd(images[:8], spec, 3, args.lr, args.device)

    rates = {}
    ta = per_inr_loop(images[: args.loop_inrs], spec, args.steps, args.lr, args.device)
    rates["a"] = args.loop_inrs * args.steps / ta
    tb = batched_autograd(images[: args.batch], spec, args.steps, args.lr, args.device)
    rates["b"] = args.batch * args.steps / tb
    tc, _ = ours(images[: args.batch], spec, args.steps, args.lr, args.device)
    rates["c"] = args.batch * args.steps / tc
    names = {"a": "(a) per-INR nn.Module loop", "b": "(b) batched autograd", "c": "(c) ours"}
    for k in "abc":
        print(f"{names[k]:<30} {rates[k]:>10.0f} INR-steps/s   {rates[k] * flops / 1e9:7.2f} GFLOP/s")
    print(f"ratio (c)/(b) = {rates['c'] / rates['b']:.2f}x   (c)/(a) = {rates['c'] / rates['a']:.1f}x")

    if args.target_batch:
        imgs = images[: args.target_batch]
        tb = batched_autograd(imgs, spec, args.target_steps, args.lr, args.device, target_psnr=40.0)
        tc, res = ours(imgs, spec, args.target_steps, args.lr, args.device, target_psnr=40.0)
        print(f"fit {len(imgs)} images to 40 dB (<= {args.target_steps} steps): (b) masked {tb:.1f} s, "
              f"(c) ours {tc:.1f} s, ratio {tb / tc:.2f}x; ours: median {res.psnr.median():.2f} dB, "
              f"mean steps {res.steps.float().mean():.0f}")
    print("reproduce: python benchmarks/fit_speed.py " + " ".join(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
