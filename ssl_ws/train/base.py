"""What the SimCLR and the supervised LightningModules share.

Data path of every step: the loader gives flat raw parameters ``[B, P]`` (see
:mod:`ssl_ws.data.dataset`); on the training device they become a
:class:`~ssl_ws.weights.WeightSpace`, are **augmented raw** (INR-space warps act on
raw weights), then **normalized** with the statistics fitted once on the raw
training split, then encoded: ``z = encoder(normalize(augment(ws)))``.

Randomness is a pure function of ``(seed, epoch, batch index, rank)``: each step
seeds its own ``torch.Generator`` for the augmentations (on the CPU, or on the training
device with ``augment.draws``), and the data order
is fixed by the sampler. With Lightning restoring weights, optimizer, scheduler
and loop state, a resumed run therefore continues exactly as an uninterrupted one.

The learning rate follows a per-step linear warm-up then cosine decay to zero
(Loshchilov & Hutter 2017), or stays constant after the warm-up: lightly's
``CosineWarmupScheduler``. Its length is ``trainer.max_steps``
when set (the way to compare methods: equal optimizer steps, whatever the data size),
else ``trainer.max_epochs`` epochs.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import pytorch_lightning as pl
import torch

from ..data.dataset import iter_row_chunks
from .datamodule import HOST_BATCH_KEYS
from ..config import to_dict, to_typed
from ..errors import SslWsError
from ..models.base import encode_weights
from ..models.export import CHECKPOINT_KEY, EmbeddingModel
from ..models.normalize import WeightNormalizer
from ..weights import WeightSpace


def step_generator(seed: int, epoch: int, index: int, rank: int, salt: int = 0, device=None) -> torch.Generator:
    """A generator on ``device`` (default: the CPU) seeded from the step's coordinates (see module
    docstring). The same seed draws other numbers on a CUDA device (Philox) than on the CPU."""
    mix = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(index), int(rank), int(salt)])
    return torch.Generator(device=device or "cpu").manual_seed(int(mix.generate_state(1, dtype=np.uint64)[0] >> 1))


def draw_device(setting: str, device) -> torch.device:
    """Where a step's augmentation parameters are drawn (``augment.draws``): ``"host"`` -> the CPU,
    ``"device"`` -> the training ``device``, ``"auto"`` -> the training device if it is a CUDA one."""
    device = torch.device(device)
    if setting == "device" or (setting == "auto" and device.type == "cuda"):
        return device
    return torch.device("cpu")


#: device types where ``optim.fused: null`` takes torch's fused Adam / AdamW / SGD kernel
FUSED_DEVICE_TYPES = ("cuda",)


def use_fused_kernel(params, setting=None) -> bool:
    """Whether the optimizer step runs torch's fused kernel: ``setting`` (``optim.fused``) when given,
    else where every parameter is a floating-point tensor on a device of :data:`FUSED_DEVICE_TYPES`.
    The fused step is the same update in one kernel instead of a few per parameter tensor: kernel
    launches, host time that grows with the encoder's number of tensors, where a GPU waits for the host.
    It rounds differently in the last bits, so a CPU (whose step is the encoder's arithmetic, not its
    launches) keeps torch's loop unless asked: its runs repeat the recorded ones bit for bit."""
    if setting is not None:
        return bool(setting)
    params = list(params)
    return bool(params) and all(p.is_floating_point() and p.device.type in FUSED_DEVICE_TYPES for p in params)


class MetricSums:
    """Batch-weighted sums of per-step metrics, for their means over many steps with no host sync per
    step: tensors are summed where they are (the training device), numbers on the host."""

    __slots__ = ("sums", "n")

    def __init__(self, sums: Optional[Dict] = None, n: int = 0):
        self.sums, self.n = dict(sums or {}), int(n)

    def add(self, n: int, values: Dict) -> None:
        """One step's ``values`` (means over its ``n`` samples)."""
        for k, v in values.items():
            if isinstance(v, torch.Tensor):
                v = v.detach() * n if n != 1 else v.detach()
            else:
                v = float(v) * n
            s = self.sums.get(k)
            self.sums[k] = v if s is None else s + v
        self.n += n

    def means(self) -> Dict[str, float]:
        """The batch-weighted means of every metric so far (one host sync)."""
        return {k: float(v) / self.n for k, v in self.sums.items()} if self.n else {}

    def state(self) -> Dict:
        """A checkpointable form (floats)."""
        return {"sums": {k: float(v) for k, v in self.sums.items()}, "n": self.n}

    @classmethod
    def from_state(cls, state: Dict, device) -> "MetricSums":
        return cls({k: torch.tensor(v, device=device) for k, v in state["sums"].items()}, state["n"])


class WeightSpaceModule(pl.LightningModule):
    """Base LightningModule: normalizer, encoder, optimizer, checkpoints.

    The data -- store, training rows, sampler and loader, the rows evaluated during
    training -- live in the run's :class:`~ssl_ws.train.datamodule.INRDataModule`
    (``self.datamodule``); evaluation runs in callbacks (:mod:`ssl_ws.train.callbacks`)
    that append to :attr:`history`.

    Args:
        cfg: the run config, typed (:class:`~ssl_ws.config.PretrainConfig` /
            :class:`~ssl_ws.config.TrainConfig`; :func:`~ssl_ws.config.to_typed`).
        spec: the INR architecture of the store's rows.
        encoder: a weight-space encoder (``forward(ws) -> [B, out_dim]``).
        normalizer: fitted on the raw training split.
        train_unit: ``"rows"`` or ``"pairs"`` (see :class:`~ssl_ws.data.dataset.BatchIndexSampler`).
    """

    def __init__(self, cfg, spec, encoder, normalizer: WeightNormalizer, train_unit: str):
        super().__init__()
        self.cfg = to_typed(cfg)
        self.spec = spec
        self.encoder = encoder
        self.normalizer = normalizer
        self.train_unit = train_unit
        self.seed = int(self.cfg.seed)
        self.run_dir = ""  # set by the run (train.runs): recorded in exported encoders
        self.history = []  # one record per evaluation (rank-local), written by the evaluation callbacks
        self.epoch_sums = MetricSums()  # this epoch's training metrics (log_train)

    # ------------------------------------------------------------- logging
    def log_train(self, n: int, step: Dict[str, torch.Tensor] = None, epoch: Dict[str, torch.Tensor] = None) -> None:
        """Training metrics of one step of ``n`` samples, without a host sync and without Lightning's
        per-call bookkeeping (about a millisecond per ``self.log``): every value is summed on the device
        for its epoch mean (``train/<name>_epoch``, logged once per epoch); ``step`` values are also logged
        as ``train/<name>_step`` on the steps Lightning writes to the logger (every
        ``trainer.log_every_n_steps``), where the progress bar shows ``loss``."""
        step = step or {}
        self.epoch_sums.add(n, {**step, **(epoch or {})})
        every = max(int(getattr(self.trainer, "log_every_n_steps", 1) or 1), 1)
        if step and (int(self.global_step) + 1) % every == 0:
            for k, v in step.items():
                self.log(f"train/{k}_step", v.detach(), prog_bar=k == "loss", on_step=True, on_epoch=False,
                         batch_size=n, sync_dist=True)

    def train_epoch_means(self) -> Dict[str, float]:
        """This epoch's batch-weighted means of the metrics given to :meth:`log_train` (one host sync)."""
        return self.epoch_sums.means()

    def on_train_epoch_start(self) -> None:
        restored = getattr(self, "_restored_sums", None)  # a run resumed mid-epoch continues its epoch's means
        self._restored_sums = None
        self.epoch_sums = MetricSums.from_state(restored, self.device) if restored is not None else MetricSums()

    def on_train_epoch_end(self) -> None:
        # after the evaluation callbacks (which read the means), before the checkpoints (which then hold
        # an empty sum: a run resumed from an epoch's end starts the next epoch afresh)
        for k, v in self.train_epoch_means().items():
            self.log(f"train/{k}_epoch", v, on_step=False, on_epoch=True, sync_dist=True)
        self.epoch_sums = MetricSums()

    # ------------------------------------------------------------------ data
    @property
    def datamodule(self):
        """The run's :class:`~ssl_ws.train.datamodule.INRDataModule` (attached by ``trainer.fit``)."""
        dm = self._trainer.datamodule if self._trainer is not None else None
        if dm is None:
            raise SslWsError(f"{type(self).__name__} trains on an INRDataModule: trainer.fit(module, datamodule=...)")
        return dm

    #: batch entries that stay on the host (moved by :meth:`INRDataModule.transfer_batch_to_device`)
    HOST_BATCH_KEYS = HOST_BATCH_KEYS

    def batch_weights(self, batch: Dict, key: str = "params") -> WeightSpace:
        return WeightSpace.from_flat(batch[key], self.spec)

    def generator_for(self, batch: Dict, salt: int = 0) -> torch.Generator:
        epoch, index = (int(v) for v in batch["key"].tolist())
        return step_generator(self.seed, epoch, index, self.global_rank, salt,
                              device=draw_device(self.cfg.augment.draws, self.device))

    def mark_consumed(self, batch: Dict) -> None:
        epoch, index = (int(v) for v in batch["key"].tolist())
        self.datamodule.mark_consumed(epoch, index)

    def encode(self, ws: WeightSpace) -> torch.Tensor:
        """``encoder(normalize(ws))`` of raw (possibly augmented) weights."""
        return encode_weights(self.encoder, self.normalizer, ws)

    # ------------------------------------------------------------ evaluation
    @torch.no_grad()
    def embed_rows(self, rows: np.ndarray) -> torch.Tensor:
        """Embeddings ``[len(rows), D]`` of store rows (eval mode, no augmentation)."""
        was = self.encoder.training
        self.encoder.eval()
        out = []
        chunk = int(self.cfg.eval.batch_size)
        store = self.datamodule.store
        try:
            for part in iter_row_chunks(np.asarray(rows, dtype=np.int64), chunk):
                ws = store.weights(part, device=self.device)
                out.append(self.encode(ws).float())
        finally:
            self.encoder.train(was)
        if not out:
            return torch.zeros(0, int(self.encoder.out_dim), device=self.device)
        z = torch.cat(out)
        if not bool(torch.isfinite(z).all()):  # one host sync per evaluation
            from .callbacks import TrainingDiverged

            raise TrainingDiverged("the embeddings are not finite", int(self.global_step))
        return z

    def labels_of(self, rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.datamodule.store.labels[np.asarray(rows, dtype=np.int64)], dtype=np.int64))

    # ------------------------------------------------------------ optimizer
    def total_steps(self) -> int:
        """Optimizer steps of the whole run: ``trainer.max_steps``, else epochs x steps per epoch."""
        max_steps = self.cfg.trainer.max_steps
        if max_steps:
            return int(max_steps)
        # steps from our sampler, not trainer.estimated_stepping_batches: that would set up the
        # train loader before a resumed run restores its loader state (mid-epoch position)
        return max(self.datamodule.steps_per_epoch(), 1) * max(int(self.cfg.trainer.max_epochs), 1)

    def schedule_steps(self):
        """``(total, warmup)`` optimizer steps of the learning-rate schedule."""
        ocfg = self.cfg.optim
        total = self.total_steps()
        if ocfg.warmup_steps is not None:
            warm = int(ocfg.warmup_steps)
        else:
            warm = int(float(ocfg.warmup_epochs) * max(self.datamodule.steps_per_epoch(), 1))
        return total, min(warm, total)

    def parameter_groups(self):
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def configure_optimizers(self):
        ocfg = self.cfg.optim
        lr, wd = float(ocfg.lr), float(ocfg.weight_decay)
        groups = self.parameter_groups()
        for g in groups:
            g.setdefault("lr", lr * g.pop("lr_factor", 1.0))
        kind = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}[ocfg.name]
        extra = {"momentum": 0.9} if ocfg.name == "sgd" else {}
        if use_fused_kernel([p for g in groups for p in g["params"]], ocfg.fused):
            extra["fused"] = True
        opt = kind(groups, lr=lr, weight_decay=wd, **extra)
        from lightly.utils.scheduler import CosineWarmupScheduler

        total, warm = self.schedule_steps()
        # lightly's schedule: linear warm-up (step + 1) / warm, then cosine from 1 to 0 over the
        # remaining steps ("constant": from 1 to 1); a factor of each group's learning rate
        end = 0.0 if ocfg.scheduler == "cosine" else 1.0
        sched = CosineWarmupScheduler(opt, warmup_epochs=warm, max_epochs=max(total, warm, 1), start_value=1.0,
                                      end_value=end)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ----------------------------------------------------------- checkpoints
    def embedding_model(self) -> EmbeddingModel:
        info = {"store": str(self.cfg.data.store), "run_dir": str(self.run_dir)}
        return EmbeddingModel(self.encoder, self.normalizer, self.spec, dict(self.encoder.config), info=info)

    def on_save_checkpoint(self, checkpoint: Dict) -> None:
        cfg = to_dict(self.cfg)
        checkpoint[CHECKPOINT_KEY] = self.embedding_model().payload(cfg)
        checkpoint["ssl_ws_history"] = [dict(r) for r in self.history]
        checkpoint["ssl_ws_train_sums"] = self.epoch_sums.state()

    def on_load_checkpoint(self, checkpoint: Dict) -> None:
        payload = checkpoint.get(CHECKPOINT_KEY)
        if payload is None:
            raise SslWsError("checkpoint has no ssl_ws encoder payload: not written by ssl-ws pretrain/train")
        # the statistics the run started with (a submodule: it follows the module's device)
        self.normalizer = WeightNormalizer.from_dict(payload["normalizer"]).to(self.device)
        self.history = [dict(r) for r in checkpoint.get("ssl_ws_history", [])]
        sums = checkpoint.get("ssl_ws_train_sums")
        self._restored_sums = {"sums": dict(sums["sums"]), "n": int(sums["n"])} if sums else None
