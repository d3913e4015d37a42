#!/usr/bin/env python
"""Host time per training step: everything a step costs but the encoder (issue 34).

Each row trains for ``--steps`` optimizer steps through the package's real run assembly
(``run_pretrain`` / ``run_train``: Lightning, the DataModule and its loader, augmentation
parameter draws, MixUp, the loss, ``self.log``, the checkpoint / guard / progress callbacks)
with a **near-zero-cost encoder** (``host-probe``: one linear map of the INR's output bias),
so what is timed is the host's work around the model. Time per step = median interval
between consecutive ``on_train_batch_start`` calls after ``--warmup`` steps (evaluation is
pushed past the end of the run), at ``--batch`` INRs (SimCLR: pairs) per step, on a synthetic
store of 2-32-32-1 SIRENs (2 fits each of 4,096 objects).

    python benchmarks/host_overhead.py                      # every row, batch 128
    python benchmarks/host_overhead.py --rows simclr-weak supervised-aligned --steps 200

Run it alone on the machine (it is a speed benchmark); torch uses ``--threads`` threads.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time

import numpy as np

ROWS = {
    "loop-floor": ("train", ["augment.preset=none", "augment.mixup=none", "trainer.progress_bar=false"]),
    "supervised-none": ("train", ["augment.preset=none", "augment.mixup=none"]),
    "supervised-weak": ("train", ["augment.preset=weak", "augment.mixup=none"]),
    "supervised-paper": ("train", ["augment.preset=paper", "augment.mixup=none"]),
    "supervised-plain": ("train", ["augment.preset=none", "augment.mixup=plain"]),
    "supervised-permute": ("train", ["augment.preset=none", "augment.mixup=permute"]),
    "supervised-aligned": ("train", ["augment.preset=none", "augment.mixup=aligned"]),
    "simclr-weak": ("pretrain", ["augment.preset=weak", "ssl.positives=same_fit"]),
    "simclr-two-views": ("pretrain", ["augment.preset=weak", "ssl.positives=two_views"]),
    "simclr-paper": ("pretrain", ["augment.preset=paper", "ssl.positives=same_fit"]),
    "lightning-bare": (None, []),  # Lightning alone: the floor under every row above
}


def synthetic_store(path: str, n_obj: int = 4096, views: int = 2, seed: int = 0) -> str:
    if os.path.exists(os.path.join(path, "meta.json")):
        return path
    from ssl_ws import INRSpec
    from ssl_ws.data import write_store

    spec = INRSpec((2, 32, 32, 1), w0=30.0, output_offset=0.5)
    rng = np.random.default_rng(seed)
    n = n_obj * views
    cols = []
    for i, (o, d) in enumerate(spec.weight_shapes):
        bound = (1.0 / d) if i == 0 else (6.0 / d) ** 0.5 / spec.w0
        cols += [rng.uniform(-bound, bound, (n, o * d)), rng.uniform(-bound, bound, (n, o))]
    obj = np.repeat(np.arange(n_obj), views)
    ids = rng.permutation(n_obj)
    held = max(4, min(128, n_obj // 16))  # objects of val and of test each
    write_store(path, params=np.concatenate(cols, axis=1).astype(np.float32), labels=obj % 10, object_ids=obj,
                view_ids=np.tile(np.arange(views), n_obj), psnr=np.full(n, 30.0, np.float32),
                splits={"train": ids[: n_obj - 2 * held].tolist(), "val": ids[n_obj - 2 * held: n_obj - held].tolist(),
                        "test": ids[n_obj - held:].tolist()},
                meta={"spec": spec, "class_names": [str(c) for c in range(10)], "image_size": [28, 28]})
    return path


def register_probe_encoder():
    """``host-probe``: a linear map of the output bias -- as close to no encoder as trains."""
    from torch import nn

    from ssl_ws.models import ENCODERS, WeightSpaceEncoder, register_encoder

    if "host-probe" in ENCODERS:
        return

    class HostProbe(WeightSpaceEncoder):
        name = "host-probe"
        description = "a linear map of the output bias (benchmarks/host_overhead.py)"
        invariant = True

        def __init__(self, spec, out_dim: int = 16):
            super().__init__(spec, out_dim)
            self._record(out_dim=out_dim)
            self.lin = nn.Linear(spec.layer_sizes[-1], out_dim)

        def encode(self, ws):
            return self.lin(ws.biases[-1])

    register_encoder(HostProbe)


def time_bare(store: str, steps: int, warmup: int, batch: int, accelerator: str = "cpu") -> dict:
    """A bare LightningModule (one linear map of the output bias, AdamW, a loader of whole batches from the
    same store held in memory, no logger, no checkpoints, no progress bar): Lightning's own step."""
    import pytorch_lightning as pl
    import torch
    from torch import nn

    from ssl_ws.data import load_store
    from ssl_ws.train.runs import _skip_cuda_probe

    _skip_cuda_probe()  # as the package's runs do: no NVML probe per step on a machine without CUDA
    st = load_store(store)
    params = torch.from_numpy(np.asarray(st.params, dtype=np.float32))
    labels = torch.from_numpy(np.asarray(st.labels, dtype=np.int64))

    class Batches(torch.utils.data.Dataset):
        def __len__(self):
            return len(labels) // batch

        def __getitem__(self, i):
            r = torch.randint(0, len(labels), (batch,))
            return params[r], labels[r]

    class Bare(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(1, int(st.num_classes))

        def training_step(self, b, i):
            return nn.functional.cross_entropy(self.lin(b[0][:, -1:]), b[1])

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), 1e-3)

    stamps = []

    class Stamp(pl.Callback):
        def on_train_batch_start(self, trainer, module, b, i):
            stamps.append(time.perf_counter())

    t = time.perf_counter()
    pl.Trainer(max_steps=steps + warmup, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, accelerator=accelerator, devices=1, callbacks=[Stamp()]).fit(
        Bare(), torch.utils.data.DataLoader(Batches(), batch_size=None, shuffle=True))
    gaps = np.diff(stamps[warmup:]) * 1000
    return {"row": "lightning-bare", "ms_per_step": float(np.median(gaps)), "p90_ms": float(np.percentile(gaps, 90)),
            "steps": len(gaps), "run_seconds": round(time.perf_counter() - t, 1)}


def time_row(name: str, store: str, out: str, steps: int, warmup: int, batch: int, accelerator: str = "cpu") -> dict:
    import pytorch_lightning as pl

    from ssl_ws.config import load_config
    from ssl_ws.train.runs import run_pretrain, run_train

    kind, extra = ROWS[name]
    stamps = []

    class Stamp(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            stamps.append(time.perf_counter())

    ov = [f"data.store={store}", f"output_dir={out}", f"name={name}", "encoder.name=host-probe",
          f"data.batch_size={batch}", f"trainer.max_steps={steps + warmup}", "eval.every_n_steps=100000",
          f"trainer.accelerator={accelerator}", "trainer.devices=1", "trainer.log_every_n_steps=10", *extra]
    if not any(o.startswith("trainer.progress_bar") for o in extra):
        ov.append("trainer.progress_bar=true")  # what a user sees (a status line per 5% where no terminal)
    if kind == "pretrain":
        ov += ["ssl.proj_hidden=16", "ssl.proj_out=8"]
    cfg = load_config(kind, None, ov)
    run = run_pretrain if kind == "pretrain" else run_train
    t = time.perf_counter()
    run(cfg, callbacks=[Stamp()])
    total = time.perf_counter() - t
    gaps = np.diff(stamps[warmup:]) * 1000
    return {"row": name, "ms_per_step": float(np.median(gaps)), "p90_ms": float(np.percentile(gaps, 90)),
            "steps": len(gaps), "run_seconds": round(total, 1)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", default="/tmp/ssl_ws_host_overhead")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (the trainer's accelerator)")
    p.add_argument("--objects", type=int, default=4096, help="objects of the synthetic store (2 fits each)")
    args = p.parse_args(argv)

    import logging
    import warnings

    import torch

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    register_probe_encoder()
    accelerator = {"cpu": "cpu", "cuda": "gpu", "auto": "auto"}.get(args.device.split(":")[0], "auto")
    store = synthetic_store(os.path.join(args.work, f"store-{args.objects}"), n_obj=args.objects)
    rows = []
    for name in args.rows:
        if name == "lightning-bare":
            r = time_bare(store, args.steps, args.warmup, args.batch, accelerator)
        else:
            r = time_row(name, store, os.path.join(args.work, "runs"), args.steps, args.warmup, args.batch, accelerator)
        rows.append(r)
        print(f"{name:>20}: {r['ms_per_step']:6.2f} ms/step (p90 {r['p90_ms']:.2f}) over {r['steps']} steps",
              file=sys.stderr, flush=True)
    print(f"\nhost time per step, batch {args.batch}, near-zero encoder, {args.threads} torch threads, "
          f"accelerator {accelerator}, {platform.node()} ({os.cpu_count()} cores), torch {torch.__version__}")
    print(f"{'row':>20}  ms/step   p90")
    for r in rows:
        print(f"{r['row']:>20}  {r['ms_per_step']:7.2f}  {r['p90_ms']:6.2f}")
    print("reproduce: python " + shlex.join([sys.argv[0]] + list(argv if argv is not None else sys.argv[1:])))


if __name__ == "__main__":
    main()
