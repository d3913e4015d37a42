"""Training-step throughput and parameter count of every encoder; fused vs blockwise DWSNet.

A training step is forward + backward + Adam step on a batch of INRs (default 256
INRs of 2 -> 32 -> 32 -> 1, random SIREN-scaled weights), loss ``mean(z^2)``.
Throughput = batch / median step time over ``--steps`` timed steps after
``--warmup`` steps.

The second part compares DWSNet's fused layer with the block-per-module
implementation of the same layer (``benchmarks/blockwise_dwsnet.py``): before timing
it checks that both have the same parameter count, compute the same function (the
blockwise twin is loaded with the fused model's weights: max |z_fused - z_block|) and
are both invariant to hidden-neuron permutations. Timed rounds alternate between the
two so that load from other processes hits both alike.

    python benchmarks/encoder_speed.py                     # everything
    python benchmarks/encoder_speed.py --only dwsnet --steps 10
    python benchmarks/encoder_speed.py --only dwsnet --threads 1   # steadier on a busy machine
    python benchmarks/encoder_speed.py --only dwsnet --device cuda --batch 1024   # on a GPU
    python benchmarks/encoder_speed.py --only dwsnet --compile --skip-blockwise   # eager vs torch.compile

``--compile`` also times the encoder compiled in place (``nn.Module.compile()``, inductor):
it checks that the compiled model computes the same embeddings, prints the seconds the first
compiled training step took (tracing and code generation) and the speed-up of a step, timed
in alternating rounds with the eager model. Measured on this project's 2-core CPU (DWSNet hidden
16, 3 layers, BatchNorm, probes 64, batch 128, 1 thread): 390 s to compile, 425 vs 416 ms of CPU
per step -- no gain, so training stays eager on CPUs; the GPU suite measures it on the GPU, where
a step is host-bound (about 2,100 small ops).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from blockwise_dwsnet import BlockwiseDWSNet  # noqa: E402

from ssl_ws import INRSpec, WeightSpace  # noqa: E402
from ssl_ws.models import ENCODERS, build_encoder, count_parameters  # noqa: E402


def random_inrs(spec: INRSpec, batch: int, seed: int = 0) -> WeightSpace:
    g = torch.Generator().manual_seed(seed)
    weights, biases = [], []
    for i, (o, d) in enumerate(spec.weight_shapes):
        bound = (1.0 / d) if i == 0 else (6.0 / d) ** 0.5 / spec.w0
        weights.append((torch.rand(batch, o, d, generator=g) * 2 - 1) * bound)
        biases.append((torch.rand(batch, o, generator=g) * 2 - 1) * bound)
    return WeightSpace(weights, biases, spec)


def permuted(ws: WeightSpace, seed: int) -> WeightSpace:
    g = torch.Generator().manual_seed(seed)
    weights, biases = list(ws.weights), list(ws.biases)
    for k, d in enumerate(ws.spec.hidden_sizes, start=1):
        p = torch.randperm(d, generator=g)
        weights[k - 1], biases[k - 1], weights[k] = weights[k - 1][:, p], biases[k - 1][:, p], weights[k][:, :, p]
    return WeightSpace(weights, biases, ws.spec)


class Stepper:
    """One training step of ``model`` on ``ws``, on the device of ``ws`` (the model is moved there)."""

    def __init__(self, model, ws):
        self.model, self.ws = model.to(ws.device).train(), ws
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        cuda = ws.device.type == "cuda"
        self.sync = torch.cuda.synchronize if cuda else (lambda: None)

    def __call__(self):
        """(wall seconds, process CPU seconds) of one step; CPU time is less inflated by other processes.
        On a GPU the step is timed to its end (synchronized), so wall seconds are the GPU's."""
        self.sync()
        t, c = time.perf_counter(), time.process_time()
        self.opt.zero_grad(set_to_none=True)
        self.model(self.ws).square().mean().backward()
        self.opt.step()
        self.sync()
        return time.perf_counter() - t, time.process_time() - c


def time_steps(stepper: Stepper, warmup: int, steps: int):
    for _ in range(warmup):
        stepper()
    return [stepper() for _ in range(steps)]


def alternating_medians(a: Stepper, b: Stepper, warmup: int, steps: int, rounds: int):
    """``((wall, cpu), (wall, cpu))`` median seconds per step of ``a`` and ``b``, timed in alternating
    rounds so that load from other processes hits both alike."""
    ta, tb = [], []
    for _ in range(rounds):
        ta += time_steps(a, warmup, steps)
        tb += time_steps(b, warmup, steps)
    return tuple((statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)) for ts in (ta, tb))


def compare_fused_blockwise(spec, ws, steps, warmup, rounds, **options):
    torch.manual_seed(0)
    fused = build_encoder("dwsnet", spec, **options)
    block = BlockwiseDWSNet.from_fused(fused)
    n_f, n_b = count_parameters(fused), count_parameters(block)
    fused, block = fused.to(ws.device), block.to(ws.device)
    probe = ws[:16]
    with torch.no_grad():
        fused.eval(), block.eval()
        zf, zb = fused(probe), block(probe)
        same = (zf - zb).abs().max().item()
        inv_f = (fused(permuted(probe, 1)) - zf).abs().max().item()
        inv_b = (block(permuted(probe, 1)) - zb).abs().max().item()
    print(f"  dwsnet {options}: params fused {n_f:,} / blockwise {n_b:,}; max|z_fused - z_block| = {same:.1e}; "
          f"permutation change of z: fused {inv_f:.1e}, blockwise {inv_b:.1e}")
    assert n_f == n_b and same < 1e-4 and inv_f < 1e-4 and inv_b < 1e-4, "fused and blockwise layers differ"
    (mf, cf), (mb, cb) = alternating_medians(Stepper(fused, ws), Stepper(block, ws), warmup, steps, rounds)
    b = len(ws)
    print(f"    fused     {mf * 1e3:8.1f} ms/step  {b / mf:8.1f} INRs/s  (cpu {cf * 1e3:.1f} ms/step)")
    print(f"    blockwise {mb * 1e3:8.1f} ms/step  {b / mb:8.1f} INRs/s  (cpu {cb * 1e3:.1f} ms/step)")
    print(f"    speed-up of the fused layer: {mb / mf:.2f}x wall-clock, {cb / cf:.2f}x CPU time")
    return mb / mf


def compare_eager_compiled(name, spec, ws, steps, warmup, rounds):
    """Eager vs ``torch.compile`` of one encoder: same embeddings, compile seconds, step speed-up."""
    torch.manual_seed(0)
    eager = build_encoder(name, spec).to(ws.device)
    compiled = build_encoder(name, spec).to(ws.device)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile()
    probe = ws[:16]
    with torch.no_grad():
        eager.eval(), compiled.eval()
        same = (eager(probe) - compiled(probe)).abs().max().item()
    se, sc = Stepper(eager, ws), Stepper(compiled, ws)
    t0 = time.perf_counter()
    sc()  # the first training step compiles forward and backward
    first = time.perf_counter() - t0
    (me, ce), (mc, cc) = alternating_medians(se, sc, warmup, steps, rounds)
    print(f"  {name} eager vs torch.compile: max|z_eager - z_compiled| = {same:.1e}; first compiled step {first:.0f} s")
    print(f"    eager     {me * 1e3:8.1f} ms/step  {len(ws) / me:8.1f} INRs/s  (cpu {ce * 1e3:.1f} ms/step)")
    print(f"    compiled  {mc * 1e3:8.1f} ms/step  {len(ws) / mc:8.1f} INRs/s  (cpu {cc * 1e3:.1f} ms/step)")
    print(f"    speed-up of torch.compile: {me / mc:.2f}x wall-clock, {ce / cc:.2f}x CPU time")
    return me / mc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="2,32,32,1")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternating fused/blockwise rounds")
    parser.add_argument("--only", choices=sorted(ENCODERS), default=None)
    parser.add_argument("--skip-blockwise", action="store_true")
    parser.add_argument("--compile", action="store_true",
                        help="also time each encoder (or --only) compiled with torch.compile against eager")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice; 1 gives steadier CPU times on a shared machine)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    spec = INRSpec(tuple(int(s) for s in args.layers.split(",")))
    ws = random_inrs(spec, args.batch).to(args.device)
    print("command: python benchmarks/encoder_speed.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])))
    where = torch.cuda.get_device_name(ws.device) if ws.device.type == "cuda" else platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {where}, "
          f"batch {args.batch} INRs of {' -> '.join(map(str, spec.layer_sizes))}; train step = fwd + bwd + Adam")
    print(f"{'encoder':<14}{'params':>10}{'ms/step':>10}{'INRs/s':>10}{'cpu ms':>10}  invariant")
    for name in ENCODERS if args.only is None else [args.only]:
        torch.manual_seed(0)
        enc = build_encoder(name, spec)
        times = time_steps(Stepper(enc, ws), args.warmup, args.steps * args.rounds)
        m, c = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
        print(f"{name:<14}{count_parameters(enc):>10,}{m * 1e3:>10.1f}{args.batch / m:>10.1f}{c * 1e3:>10.1f}  {enc.invariant}")
    if args.compile:
        print("eager vs torch.compile (inductor), the same training step:")
        for name in ENCODERS if args.only is None else [args.only]:
            compare_eager_compiled(name, spec, ws, args.steps, args.warmup, args.rounds)
    if not args.skip_blockwise and args.only in (None, "dwsnet"):
        print("fused vs block-per-module DWS layer (paper's small configuration: hidden 16, 3 layers, max pooling):")
        for set_layer in ("sab", "deepsets"):
            compare_fused_blockwise(spec, ws, args.steps, args.warmup, args.rounds,
                                    hidden=16, n_layers=3, pooling="max", set_layer=set_layer)


if __name__ == "__main__":
    main()
