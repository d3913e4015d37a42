"""The data side of a training run, as a Lightning ``LightningDataModule``.

:class:`INRDataModule` owns the store, the rows the run trains on, the sampler and the
resumable training loader (:mod:`ssl_ws.data.dataset`), and the rows the evaluation callbacks
score (:mod:`ssl_ws.train.callbacks`). The LightningModule keeps the model and the step: it
reaches the data through ``self.trainer.datamodule``.

The training sampler is built in one place, :meth:`INRDataModule.sampler`: for the
loader of this rank, for the number of steps per epoch (the learning-rate schedule
of epoch-based runs), and up front, before a run directory is filled, so that a
split smaller than one batch fails in one line.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import pytorch_lightning as pl
import torch

from ..data.dataset import BatchIndexSampler, ParamsBatchDataset, ResidentRows, StatefulLoader
from ..errors import SslWsError

#: batch entries left on the host: the step's ``(epoch, index)`` key seeds the CPU generator
#: and the loader's resume position, so reading it must not wait for the device
HOST_BATCH_KEYS = ("key",)


class INRDataModule(pl.LightningDataModule):
    """Training batches of store rows, and the rows evaluated during training.

    Args:
        store: the :class:`~ssl_ws.data.store.INRStore`.
        train_rows: the store rows the sampler draws from.
        batch_size: samples per batch and process.
        unit: ``"rows"`` (every row a sample) or ``"pairs"`` (every object a sample
            bringing two of its fits; see :class:`~ssl_ws.data.dataset.BatchIndexSampler`).
        seed: the data order is a pure function of ``(seed, epoch)``.
        num_workers: loader worker processes.
        eval_rows: named row sets the evaluation callbacks score, e.g.
            ``{"val", "test", "train"}`` (supervised) or ``{"bank", "val"}`` (SimCLR).
        resident: hold the training rows in the training device's memory and gather every batch
            there (:class:`~ssl_ws.data.dataset.ResidentRows`); ``None``: where they fit.
    """

    def __init__(self, store, train_rows: np.ndarray, *, batch_size: int, unit: str = "rows", seed: int = 0,
                 num_workers: int = 0, eval_rows: Optional[Dict[str, np.ndarray]] = None,
                 resident: Optional[bool] = None):
        super().__init__()
        self.store = store
        self.train_rows = np.asarray(train_rows, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.unit = unit
        self.seed = int(seed)
        self.num_workers = int(num_workers)
        self.eval_rows = {k: np.asarray(v, dtype=np.int64) for k, v in (eval_rows or {}).items()}
        self.loader: Optional[StatefulLoader] = None
        self.resident = resident
        self.resident_rows: Optional[ResidentRows] = None  # set with the training loader

    @classmethod
    def from_config(cls, store, train_rows: np.ndarray, cfg, unit: str, eval_rows: Dict[str, np.ndarray]):
        """The data module of a run (its ``data`` and ``trainer`` sections); its rank-0 sampler is built
        once up front so that 'too few INRs for a batch' fails in one line, before training starts."""
        dm = cls(store, train_rows, batch_size=int(cfg.data.batch_size), unit=unit, seed=int(cfg.seed),
                 num_workers=int(cfg.data.num_workers), eval_rows=eval_rows, resident=cfg.data.resident)
        dm.sampler(rank=0, world_size=world_size(cfg))
        return dm

    def _placement(self):
        """``(rank, world_size)`` of this process (one process before a trainer is attached)."""
        t = self.trainer
        return (int(t.global_rank), int(t.world_size)) if t is not None else (0, 1)

    def sampler(self, rank: Optional[int] = None, world_size: Optional[int] = None) -> BatchIndexSampler:
        """The training sampler of ``rank`` among ``world_size`` processes (default: this one);
        raises a one-line :class:`~ssl_ws.errors.SslWsError` when the rows do not fill a batch."""
        r, w = self._placement()
        return BatchIndexSampler(self.train_rows, self.batch_size, unit=self.unit, object_ids=self.store.object_ids,
                                 seed=self.seed, rank=r if rank is None else int(rank),
                                 world_size=w if world_size is None else int(world_size))

    def steps_per_epoch(self) -> int:
        return len(self.sampler())

    def train_dataloader(self) -> StatefulLoader:
        self.resident_rows = self._hold_rows()
        dataset = ParamsBatchDataset(self.store, gather=self.resident_rows is None)
        self.loader = StatefulLoader(dataset, self.sampler(), num_workers=self.num_workers,
                                     pin_memory=torch.cuda.is_available())
        return self.loader

    def _hold_rows(self) -> Optional[ResidentRows]:
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        hold = self.resident if self.resident is not None else ResidentRows.fits(self.store, self.train_rows, device)
        if not hold:
            return None
        try:
            return ResidentRows(self.store, self.train_rows, device)
        except (RuntimeError, MemoryError) as exc:  # torch.OutOfMemoryError is a RuntimeError
            gb = ResidentRows.nbytes(self.store, self.train_rows) / 2**30
            raise SslWsError(f"data.resident=true: the {len(self.train_rows)} training rows ({gb:.2f} GiB) do not fit "
                             f"the memory of {device} ({type(exc).__name__}); set data.resident=null or false") from None

    def transfer_batch_to_device(self, batch, device, dataloader_idx: int):
        """Lightning's move to ``device`` of everything but :data:`HOST_BATCH_KEYS`; with the training rows
        held on the device, the batch's parameters and labels are gathered there."""
        if not isinstance(batch, dict):
            return super().transfer_batch_to_device(batch, device, dataloader_idx)
        host = {k: batch[k] for k in HOST_BATCH_KEYS if k in batch}
        rest = {k: v for k, v in batch.items() if k not in host}
        if all(isinstance(v, torch.Tensor) for v in rest.values()):  # the loader's: moved directly (Lightning's
            nb = torch.device(device).type != "cpu"                    # generic walk costs more than the moves)
            moved = {k: v.to(device, non_blocking=nb) for k, v in rest.items()}
        else:
            moved = super().transfer_batch_to_device(rest, device, dataloader_idx)
        if "params" not in moved and self.resident_rows is not None:
            moved["params"], moved["labels"] = self.resident_rows.gather(moved["rows"])
            if "rows2" in moved:
                moved["params2"] = self.resident_rows.gather(moved["rows2"])[0]
        return {**moved, **host}

    def mark_consumed(self, epoch: int, index: int) -> None:
        """Batch ``index`` of ``epoch`` reached the optimizer: a checkpoint from now on resumes after it
        (the loader prefetches, so it cannot tell by itself)."""
        if self.loader is not None:
            self.loader.mark_consumed(epoch, index + 1)


def world_size(cfg) -> int:
    """Processes of a run: devices per node x nodes (``trainer`` section)."""
    d = cfg.trainer.devices
    if isinstance(d, int) or (isinstance(d, str) and d.isdigit()):
        n = int(d)
    elif isinstance(d, (list, tuple)) or (hasattr(d, "__len__") and not isinstance(d, str)):
        n = len(d)
    else:
        n = 1
    return max(n, 1) * int(cfg.trainer.num_nodes)
