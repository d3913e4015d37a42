#!/usr/bin/env python
"""GPU-time estimate of every stage of run_suite.py at full scale, from op counts made on a CPU.

Each unit of work (one fitting step of a batch of INRs, one supervised or SimCLR training step,
one evaluation forward pass) runs once on the CPU under a ``TorchDispatchMode`` that records,
for every aten op: its FLOPs (``torch.utils.flop_counter``'s formulas: matrix products and
convolutions), the bytes it reads and writes (sizes of its tensor inputs and outputs; views
move nothing and are left out) and the op itself. An op then costs, on the GPU,

    t_op = max(FLOPs / F, bytes / BW, T_KERNEL)

and a step costs ``max(sum t_op, n_ops x T_HOST) + T_STEP``: eager PyTorch issues every op from
Python (T_HOST each), so a step of many small ops is bound by the host, one of a few big ops by
the GPU. Constants (H100 SXM, fp32, measured or read in /work/.library/device/KINDS.md):

* ``F = 25 TFLOP/s``: fp32 matrix products of small inner size (32, 16) -- well below the 67
  TFLOP/s fp32 peak (TF32 is off by default in PyTorch);
* ``BW = 2.0 TB/s``: two thirds of the 3.0 TB/s a device-to-device copy moved on this workplace's H100;
* ``T_KERNEL = 3 us``: the shortest a kernel takes; ``T_HOST = 10 us``: one eager op with autograd
  bookkeeping, issued from Python;
* ``T_STEP = 2 ms``: Lightning's loop, the loader (pinned batches), logging, per optimizer step.

Host-side work that the GPU does not speed up is timed here instead and added as measured: the
aligned MixUp's weight matching (scipy's assignment solver), the linear probe (L-BFGS on the host).
Shapes are the full-scale ones (batch 128 supervised, 256 pairs SimCLR, fitting chunks of 8192
INRs); FLOPs and bytes of a fitting step are counted on 256 INRs and scaled (every op is batched
over the INRs).

    python benchmarks/gpu/estimate.py            # prints the table of README.md (about a minute)
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

F, BW, T_KERNEL, T_HOST, T_STEP = 25e12, 2.0e12, 3e-6, 10e-6, 2e-3


class OpCounter(TorchDispatchMode):
    """Records (FLOPs, bytes) of every aten op run inside it."""

    def __init__(self):
        super().__init__()
        from torch.utils.flop_counter import FlopCounterMode

        self.registry = FlopCounterMode().flop_registry
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if getattr(func, "is_view", False):  # no kernel, no memory moved: host time only
            self.ops.append((str(func), 0, 0, True))
            return out
        packet = func._overloadpacket
        flops = 0
        if packet in self.registry:
            flops = self.registry[packet](*args, **kwargs, out_val=out)  # shapes taken by the registry's wrapper
        leaves = torch.utils._pytree.tree_leaves((args, kwargs, out))
        nbytes = sum(t.numel() * t.element_size() for t in leaves if isinstance(t, torch.Tensor))
        self.ops.append((str(func), int(flops), int(nbytes), False))
        return out


def count(fn, repeats: int = 1):
    """(n_ops, FLOPs, bytes, gpu_seconds) of one call of ``fn`` (after a warm-up call)."""
    fn()
    with OpCounter() as c:
        for _ in range(repeats):
            fn()
    ops = c.ops
    n = len(ops) / repeats
    flops = sum(o[1] for o in ops) / repeats
    nbytes = sum(o[2] for o in ops) / repeats
    gpu = sum(max(o[1] / F, o[2] / BW, T_KERNEL) for o in ops if not o[3]) / repeats
    return dict(ops=n, flops=flops, bytes=nbytes, gpu_s=gpu, host_s=n * T_HOST)


def step_time(c, scale: float = 1.0) -> float:
    """Seconds of one step on the GPU: FLOPs and bytes scaled by ``scale`` (bigger batch), op count not."""
    gpu = max(c["flops"] * scale / F, c["bytes"] * scale / BW, c["ops"] * T_KERNEL) if scale != 1.0 else c["gpu_s"]
    return max(gpu, c["host_s"])


# ----------------------------------------------------------------------------- units of work
def fit_unit(n: int = 256, steps: int = 5):
    from ssl_ws.inr.fit import fit_inrs

    images = torch.rand(n, 1, 28, 28)
    return count(lambda: fit_inrs(images, recipe="dwsnets", steps=steps, target_psnr=math.inf, micro_batch=None),
                 repeats=1), steps


def train_units(probes: bool):
    """Supervised step (batch 128, symmetry augmentation), SimCLR step (256 pairs), eval forward (4096)."""
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead

    from ssl_ws.augment import preset
    from ssl_ws.config import load_config, to_dict
    from ssl_ws.models.base import encode_weights
    from ssl_ws.models.normalize import WeightNormalizer
    from ssl_ws.train.runs import build_encoder_from_config
    from ssl_ws.weights import INRSpec, WeightSpace

    from run_suite import PRE_CFG, SUP_CFG

    spec = INRSpec((2, 32, 32, 1))
    extra = ["encoder.probes=64"] if probes else []
    out = {}
    for kind, cfg_path, batch in (("train", SUP_CFG, 128), ("pretrain", PRE_CFG, 256)):
        cfg = to_dict(load_config(kind, os.path.join(ROOT, cfg_path), ["data.store=x"] + extra))
        torch.manual_seed(0)
        enc = build_encoder_from_config(cfg["encoder"], spec, image_size=(28, 28))
        flat = torch.randn(batch, spec.n_params) * 0.05
        ws = WeightSpace.from_flat(flat, spec)
        norm = WeightNormalizer.fit(ws, spec)
        if kind == "train":
            head = torch.nn.Linear(enc.out_dim, 10)
            params = list(enc.parameters()) + list(head.parameters())
            aug = preset("symmetry")
            labels = torch.randint(0, 10, (batch,))
            g = torch.Generator().manual_seed(0)

            def loss_fn():
                return torch.nn.functional.cross_entropy(head(encode_weights(enc, norm, aug(ws, g))), labels)
        else:
            proj = SimCLRProjectionHead(enc.out_dim, cfg["ssl"]["proj_hidden"], cfg["ssl"]["proj_out"])
            params = list(enc.parameters()) + list(proj.parameters())
            crit = NTXentLoss(temperature=0.1)
            aug, g = preset("paper"), torch.Generator().manual_seed(0)  # same_fit: two paper views of one fit

            def loss_fn():
                return crit(proj(encode_weights(enc, norm, aug(ws, g))), proj(encode_weights(enc, norm, aug(ws, g))))
        opt = torch.optim.AdamW(params, lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn().backward()
            opt.step()

        out[kind] = count(step)
        if kind == "train":
            enc.eval()
            big = WeightSpace.from_flat(torch.randn(1024, spec.n_params) * 0.05, spec)
            with torch.no_grad():
                out["eval_1024"] = count(lambda: encode_weights(enc, norm, big))
    return out


def aligned_mixup_host_s(batch: int = 128) -> float:
    """Seconds of one batch's aligned MixUp on this CPU (weight matching on the host: the GPU keeps this)."""
    from ssl_ws.augment import MixUp
    from ssl_ws.weights import INRSpec, WeightSpace

    spec = INRSpec((2, 32, 32, 1))
    ws = WeightSpace.from_flat(torch.randn(batch, spec.n_params) * 0.05, spec)
    mix, g = MixUp("aligned"), torch.Generator().manual_seed(0)
    mix.mix(ws, generator=g)
    t0 = time.perf_counter()
    for _ in range(3):
        mix.mix(ws, generator=g)
    return (time.perf_counter() - t0) / 3


# ----------------------------------------------------------------------------- stages
def stage_estimates():
    from run_suite import SCALES

    s = SCALES["full"]
    n_train, n_val, n_test = (int(x) for x in s["split"].split(","))
    fit, fit_steps = fit_unit()
    chunk = s["chunk"]
    fit_step = step_time({k: v / fit_steps for k, v in fit.items()}, scale=chunk / 256)
    rows = []

    def fit_stage(name, inrs):
        chunks = math.ceil(inrs / chunk)
        secs = chunks * 1000 * fit_step + 15  # dwsnets recipe: ~all INRs run the 1,000 steps; +15 s start/write
        rows.append((name, secs, f"{inrs:,} INRs x 1000 steps; {fit['flops'] / fit_steps / 256 / 1e6:.1f} MFLOP and "
                     f"{fit['bytes'] / fit_steps / 256 / 1e6:.2f} MB per INR-step, {fit['ops'] / fit_steps:.0f} ops/step; "
                     f"{chunk} INRs per chunk: {fit_step * 1e3:.1f} ms/step"))

    fit_stage("fit-1v", n_train + n_val + n_test)
    mix_s = aligned_mixup_host_s()
    row_s = {}
    for probes in (False, True):
        u = train_units(probes)
        sfx = "-probes" if probes else ""
        sup = step_time(u["train"]) + T_STEP
        evals = 5 * (n_val + n_test + 5000) / 1024 * step_time(u["eval_1024"])
        per_row = s["sup_steps"] * sup + evals + 10  # + 10 s: trainer set-up, normalizer fit, loader workers
        row_s[probes] = per_row
        mix_row = per_row + s["sup_steps"] * mix_s
        rows.append((f"supervised{sfx}", 2 * per_row + mix_row,
                     f"3 rows x {s['sup_steps']} steps at {sup * 1e3:.1f} ms ({u['train']['ops']:.0f} ops, "
                     f"{u['train']['flops'] / 1e9:.1f} GFLOP, {u['train']['bytes'] / 1e9:.2f} GB per step) + 5 evals of "
                     f"{n_val + n_test + 5000:,} INRs; aligned MixUp + {mix_s * 1e3:.0f} ms/step on the host"))
        pre = step_time(u["pretrain"]) + T_STEP
        bank = 20000
        pre_evals = 5 * ((bank + n_val) / 1024 * step_time(u["eval_1024"]) + 5)  # + the online probe (host)
        embed_all = (n_train + n_val + n_test) / 1024 * step_time(u["eval_1024"])
        evals = 4 * embed_all + 30 + 2 * 5  # probe with all labels ~30 s of L-BFGS on the host; 10 labels, kNN ~5 s
        ft = s["ft_steps"] * sup + 5 * (n_val + n_test + 5000) / 1024 * step_time(u["eval_1024"]) + 10
        rows.append((f"simclr{sfx}", s["pre_steps"] * pre + pre_evals + evals + ft + 10,
                     f"{s['pre_steps']} steps at {pre * 1e3:.1f} ms ({u['pretrain']['ops']:.0f} ops, "
                     f"{u['pretrain']['flops'] / 1e9:.1f} GFLOP per step, 2 x 256 INRs) + 5 online evals; "
                     f"probe / kNN (L-BFGS on the host) / finetune ({s['ft_steps']} steps)"))
    rows.append(("speed", 240.0, "CUDA start and imports (~20 s); per-INR loops (fit 8 INRs x 30 steps, "
                 "augment 2048 INRs and MixUp 2048 pairs on the host: ~3 s each at this CPU's rates), fit to 40 dB "
                 "(1,024 INRs, 2 methods), kNN 10k x 100k (scikit-learn brute force on 16 cores), DWSNet 2 x 24 steps; "
                 "torch.compile of the DWSNet step (~120 s of tracing and code generation, assumed: 390 s on one "
                 "core of this CPU, where compiling is host work)"))
    per_shard = math.ceil((10 * n_train + n_val + n_test) / s["fit_shards"])
    for i in range(s["fit_shards"]):
        fit_stage(f"fit-10v-{i}", per_shard)
    rows.append(("merge-10v", 20.0, f"{10 * n_train + n_val + n_test:,} rows x 4.7 kB copied (2.7 GB)"))
    rows.append(("supervised-10v", row_s[False] + row_s[True], "2 rows (without / with probes), same steps as above"))
    return rows


def main() -> int:
    torch.set_num_threads(1)
    rows = stage_estimates()
    first = [r for r in rows if not ("10v" in r[0])]
    second = [r for r in rows if "10v" in r[0]]
    print("| stage | estimated H100 seconds | derivation |")
    print("|---|---|---|")
    for group, label in ((first, "lease 1 (1-view store)"), (second, "lease 2 (10-view store)")):
        for name, secs, how in group:
            print(f"| {name} | {secs:.0f} | {how} |")
        total = sum(r[1] for r in group)
        print(f"| **{label}** | **{total:.0f}** ({total / 60:.1f} min) | |")
    print(json.dumps({r[0]: round(r[1]) for r in rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
