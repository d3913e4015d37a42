"""Evaluation and run control during training, as Lightning callbacks.

The evaluations run at the end of a training epoch when one is due (``eval.every_n_steps``
optimizer steps since the last, else every ``eval.every_n_epochs`` epochs, and at the end),
on :meth:`~ssl_ws.train.datamodule.INRDataModule.eval_rows`, in eval mode, unaugmented; they
``pl_module.log`` their metrics (for the ``best`` checkpoint) and append a record to
``pl_module.history`` (carried by every checkpoint, reported in ``results.json``).

* :class:`SupervisedEvaluation` -- validation and test accuracy, clean train accuracy on at
  most :data:`~ssl_ws.train.runs.TRAIN_ACC_ROWS` rows; best-validation record in ``pl_module.best``.
* :class:`OnlineEvaluation` -- weighted kNN and linear probe of the embeddings, validation rows
  against training rows (:mod:`ssl_ws.train.online_eval`, :mod:`ssl_ws.eval`).
* :class:`DivergenceGuard` -- stops a run whose loss is not finite (:class:`TrainingDiverged`)
  before a checkpoint is written.
* :class:`LineProgress` -- a periodic one-line status where the output is no terminal.
* :class:`FirstStepDump` -- test probe: what the first step's loss saw on every process (:data:`DUMP_ENV`).
"""

from __future__ import annotations

import math
import os
from typing import Optional

import pytorch_lightning as pl
import torch

from ..errors import SslWsError
from .online_eval import online_metrics

#: when set to a directory, every process saves its first step's projections and loss there
DUMP_ENV = "SSL_WS_DUMP_FIRST_STEP"


def is_last_epoch(trainer: "pl.Trainer") -> bool:
    """Whether the epoch now ending is the run's last (by ``max_steps`` or by ``max_epochs``)."""
    if trainer.max_steps is not None and trainer.max_steps > 0:
        return int(trainer.global_step) >= int(trainer.max_steps)
    return trainer.current_epoch + 1 >= int(trainer.max_epochs)


class EvaluationCallback(pl.Callback):
    """When to evaluate (see the module docstring); subclasses say what: :meth:`evaluate`."""

    def __init__(self, every_n_steps: Optional[int] = None, every_n_epochs: int = 1):
        self.every_n_steps = int(every_n_steps) if every_n_steps else None
        self.every_n_epochs = max(int(every_n_epochs or 1), 1)

    def due(self, trainer: "pl.Trainer", pl_module) -> bool:
        if is_last_epoch(trainer):
            return True
        if self.every_n_steps:
            last = pl_module.history[-1]["step"] if pl_module.history else 0
            return int(trainer.global_step) - int(last) >= self.every_n_steps
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module) -> None:
        if self.due(trainer, pl_module):
            self.evaluate(trainer, pl_module)

    def evaluate(self, trainer: "pl.Trainer", pl_module) -> None:  # pragma: no cover
        raise NotImplementedError


class SupervisedEvaluation(EvaluationCallback):
    """Validation, test and clean train accuracy of a :class:`~ssl_ws.train.supervised.SupervisedModule`."""

    def evaluate(self, trainer, pl_module) -> None:
        rows = trainer.datamodule.eval_rows
        val = pl_module.accuracy(rows["val"])
        test = pl_module.accuracy(rows["test"])
        pl_module.log("val/acc", val, on_epoch=True, prog_bar=True, sync_dist=True)
        pl_module.log("test/acc", test, on_epoch=True, sync_dist=True)
        rec = {"epoch": int(trainer.current_epoch), "step": int(trainer.global_step), "val_acc": val, "test_acc": test}
        loss = pl_module.pop_mean_train_loss()
        if loss is not None:  # mean (augmented / mixed) training loss since the previous evaluation
            rec["train_loss"] = loss
        if len(rows.get("train", ())):
            # clean train accuracy: unaugmented, eval mode (train/acc is on augmented batches)
            rec["train_acc"] = pl_module.accuracy(rows["train"])
            pl_module.log("train/clean_acc", rec["train_acc"], on_epoch=True, sync_dist=True)
        pl_module.history.append(rec)
        if pl_module.best is None or val > pl_module.best["val_acc"]:
            pl_module.best = dict(rec)


class OnlineEvaluation(EvaluationCallback):
    """Weighted kNN and linear-probe accuracy of the embeddings (SimCLR), validation rows
    against the bank rows of the data module."""

    def __init__(self, every_n_steps: Optional[int] = None, every_n_epochs: int = 1, *, k: int = 20,
                 temperature: float = 0.07, probe_max_train: int = 5000, seed: int = 0):
        super().__init__(every_n_steps, every_n_epochs)
        self.k, self.temperature = int(k), float(temperature)
        self.probe_max_train, self.seed = int(probe_max_train), int(seed)

    def evaluate(self, trainer, pl_module) -> None:
        dm = trainer.datamodule
        bank, val = dm.eval_rows.get("bank", ()), dm.eval_rows.get("val", ())
        if len(val) == 0 or len(bank) == 0:
            return
        zb, zv = pl_module.embed_rows(bank), pl_module.embed_rows(val)
        m = online_metrics(zb, pl_module.labels_of(bank), zv, pl_module.labels_of(val), k=self.k,
                           temperature=self.temperature, num_classes=int(dm.store.num_classes),
                           probe_max_train=self.probe_max_train, seed=self.seed)
        pl_module.log("online/knn_acc", m["knn_acc"], on_epoch=True, prog_bar=True, sync_dist=True)
        pl_module.log("online/probe_acc", m["probe_acc"], on_epoch=True, prog_bar=True, sync_dist=True)
        loss = pl_module.train_epoch_means().get("loss")  # this epoch's mean training loss
        rec = {"epoch": int(trainer.current_epoch), "step": int(trainer.global_step), **m}
        if loss is not None:
            rec["loss"] = float(loss)
        pl_module.history.append(rec)


class TrainingDiverged(SslWsError):
    """The loss or the embeddings of a run stopped being finite."""

    CAUSES = ("usual causes: a learning rate too high for this model (lower optim.lr or set "
              "trainer.gradient_clip_val), augmentations that move weights far outside the data, or "
              "non-finite weights in the store")

    def __init__(self, what: str, step: int):
        super().__init__(f"training diverged: {what} at step {step}; {self.CAUSES}")
        self.step = step


class DivergenceGuard(pl.Callback):
    """Stops the run when a training loss is not finite.

    The check is kept on the device, with no host sync per step: the epoch's running sum of the
    training loss that the module keeps anyway (``epoch_sums``, :meth:`~ssl_ws.train.base.
    WeightSpaceModule.log_train`) is not finite once any step's loss was not; a module without one
    is watched step by step (``bad |= ~isfinite(loss)``). It is read every ``every`` steps, at every
    epoch's end and before every checkpoint, so a diverged run stops within ``every`` steps and never
    checkpoints NaN weights as its last or best state.
    """

    def __init__(self, every: int = 10):
        self.every = max(int(every), 1)
        self._bad = None

    @staticmethod
    def _loss_sum(pl_module):
        sums = getattr(pl_module, "epoch_sums", None)
        return None if sums is None else sums.sums.get("loss")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._loss_sum(pl_module) is None:
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            if loss is None:
                return
            bad = ~torch.isfinite(loss.detach())
            self._bad = bad if self._bad is None else (self._bad | bad)
        if int(trainer.global_step) % self.every == 0:
            self.check(trainer, pl_module)

    def check(self, trainer, pl_module) -> None:
        total = self._loss_sum(pl_module)
        if (total is not None and not math.isfinite(float(total))) or (self._bad is not None and bool(self._bad)):
            raise TrainingDiverged("the training loss is not finite", int(trainer.global_step))

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        self.check(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.check(trainer, pl_module)


class LineProgress(pl.Callback):
    """``step 200/1000 (20%) loss 4.213 3.1 steps/s eta 4m18s`` to stderr every ``every`` steps (at
    least one in ``lines`` of the run) and at every evaluation's metrics; no carriage returns."""

    def __init__(self, lines: int = 20):
        self.lines = max(int(lines), 1)
        self._t0 = self._step0 = self._shown = None

    @staticmethod
    def _print(text: str) -> None:
        import sys

        print(text, file=sys.stderr, flush=True)

    def on_train_start(self, trainer, pl_module) -> None:
        import time

        self._t0, self._step0 = time.perf_counter(), int(trainer.global_step)

    def _total(self, trainer) -> int:
        if trainer.max_steps and trainer.max_steps > 0:
            return int(trainer.max_steps)
        return int(trainer.estimated_stepping_batches)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        import time

        if not trainer.is_global_zero:
            return
        step, total = int(trainer.global_step), self._total(trainer)
        every = max(1, total // self.lines)
        if step % every and step != total:
            return
        rate = (step - self._step0) / max(time.perf_counter() - self._t0, 1e-9)
        eta = int((total - step) / rate) if rate > 0 else 0
        loss = trainer.callback_metrics.get("train/loss_step")  # logged every log_every_n_steps (log_train)
        loss_txt = f" loss {float(loss):.4g}" if loss is not None else ""
        self._print(f"step {step}/{total} ({100 * step // max(total, 1)}%){loss_txt} {rate:.2f} steps/s "
                    f"eta {eta // 60}m{eta % 60:02d}s")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or not pl_module.history:
            return
        rec = pl_module.history[-1]
        if rec.get("step") != int(trainer.global_step) or self._shown == rec.get("step"):
            return
        self._shown = rec["step"]
        shown = " ".join(f"{k}={v:.4f}" for k, v in rec.items() if k not in ("epoch", "step") and isinstance(v, float))
        self._print(f"evaluation at step {rec['step']}: {shown}")


class FirstStepDump(pl.Callback):
    """Saves ``{"z1", "z2", "loss", "rank", "world_size"}`` of the first optimizer step to
    ``<directory>/rank<r>.pt`` on every process (the step returns its projections)."""

    def __init__(self, directory: str):
        self.directory = directory

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step != 1 or not isinstance(outputs, dict) or "z1" not in outputs:
            return
        torch.save({"z1": outputs["z1"].cpu(), "z2": outputs["z2"].cpu(), "loss": outputs["loss"].detach().cpu(),
                    "rank": trainer.global_rank, "world_size": trainer.world_size},
                   os.path.join(self.directory, f"rank{trainer.global_rank}.pt"))
