"""Batches of INR parameters for training: index batches in, flat tensors out.

A :class:`BatchIndexSampler` draws whole batches of store rows and :class:`ParamsBatchDataset`
gathers each from the ``params.npy`` memmap with one fancy index, as flat float32 tensors, or,
where the training rows fit the training device's memory, :class:`ResidentRows` holds them there
and the batch is gathered on the device (the WeightSpace is built, augmented and encoded in the
LightningModule, on its device).

Sampling units: ``"rows"`` -- every (object, view) row is a sample; ``"pairs"`` -- every object
is a sample bringing two *different* views of itself (``ssl.positives=two_views``).

Order is a pure function of ``(seed, epoch)``: a permutation of the units cut into global
batches of ``batch_size x world_size``, rank ``r`` taking its slice of each (every rank runs the
same number of steps, as ``DistributedSampler(drop_last=True)``). :class:`StatefulLoader` saves
the batches consumed in the current epoch, so a run resumed mid-epoch sees exactly the rest.
"""

from __future__ import annotations

from typing import Dict, Iterator, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..devices import available_memory
from ..errors import SslWsError

UNITS = ("rows", "pairs")


def _rng(seed: int, epoch: int, salt: int = 0) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), int(salt)])


def object_view_table(object_ids: np.ndarray, rows: np.ndarray):
    """Group ``rows`` by object: ``(objects [M], starts [M], counts [M], rows_sorted [N])``."""
    oid = np.asarray(object_ids)[rows]
    order = np.argsort(oid, kind="stable")
    rows_sorted = rows[order]
    objects, starts, counts = np.unique(oid[order], return_index=True, return_counts=True)
    return objects, starts, counts, rows_sorted


class BatchIndexSampler(Sampler):
    """Yields ``{"epoch", "index", "rows"[, "rows2"]}`` per batch of this rank.

    Args:
        rows: candidate store rows (sorted int64), e.g. ``store.rows("train", max_views)``.
        object_ids: ``store.object_ids`` (needed for ``unit="pairs"``).
        batch_size: samples per batch on this rank.
        unit: ``"rows"`` or ``"pairs"`` (see module docstring).
        seed, rank, world_size: determinism and sharding.
    """

    def __init__(
        self,
        rows: np.ndarray,
        batch_size: int,
        *,
        unit: str = "rows",
        object_ids: Optional[np.ndarray] = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        what: str = "training split",
    ):
        if unit not in UNITS:
            raise ValueError(unit)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.unit = unit
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.shuffle = shuffle
        self.epoch = 0
        self._skip = (0, 0)  # (epoch, batches): the iterators of that epoch start after them
        self._order = (None, None)  # (epoch, its permutation of the units): drawn once an epoch
        if unit == "pairs":
            if object_ids is None:
                raise ValueError("unit='pairs' needs object_ids")
            self.objects, self.starts, self.counts, self.rows_sorted = object_view_table(object_ids, self.rows)
            if len(self.objects) and self.counts.min() < 2:
                n1 = int((self.counts < 2).sum())
                raise SslWsError(
                    f"positives from two views need at least 2 views of every object, but {n1} of "
                    f"{len(self.objects)} objects in the {what} have one; use ssl.positives=same_fit or fit more views"
                )
            n_units, unit_name = len(self.objects), "objects"
        else:
            n_units, unit_name = len(self.rows), "INRs"
        self.n_units = n_units
        global_batch = self.batch_size * self.world_size
        if n_units < global_batch:
            extra = f" x {self.world_size} processes" if self.world_size > 1 else ""
            raise SslWsError(
                f"the {what} has {n_units} {unit_name}, fewer than one batch ({self.batch_size}{extra}); "
                f"lower data.batch_size or use a larger store"
            )
        self.n_batches = n_units // global_batch

    def __len__(self) -> int:
        return self.n_batches

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def skip(self, epoch: int, n: int) -> None:
        """Iterators of ``epoch`` start at its batch ``n`` (mid-epoch resume)."""
        self._skip = (int(epoch), int(n))

    def batch(self, epoch: int, index: int) -> Dict:
        """Batch ``index`` of ``epoch`` for this rank (a pure function)."""
        g = self.batch_size * self.world_size
        units = self.order(epoch)[index * g + self.rank * self.batch_size : index * g + (self.rank + 1) * self.batch_size]
        out = {"epoch": epoch, "index": index}
        if self.unit == "rows":
            out["rows"] = self.rows[units]
        else:
            # two different views of each object: first uniform, second uniform among the others
            r = _rng(self.seed, epoch, 1 + index * self.world_size + self.rank)
            counts = self.counts[units]
            a = np.floor(r.random(len(units)) * counts).astype(np.int64)
            b = (a + 1 + np.floor(r.random(len(units)) * (counts - 1)).astype(np.int64)) % counts
            out["rows"] = self.rows_sorted[self.starts[units] + a]
            out["rows2"] = self.rows_sorted[self.starts[units] + b]
        return out

    def order(self, epoch: int) -> np.ndarray:
        """The units of ``epoch`` in their order (a permutation drawn from ``(seed, epoch)``)."""
        if self._order[0] != epoch:
            perm = _rng(self.seed, epoch).permutation(self.n_units) if self.shuffle else np.arange(self.n_units)
            self._order = (epoch, perm)
        return self._order[1]

    def __iter__(self) -> Iterator[Dict]:
        epoch = self.epoch
        start = self._skip[1] if self._skip[0] == epoch else 0
        for i in range(start, self.n_batches):
            yield self.batch(epoch, i)


class ResidentRows:
    """The parameters and labels of some store rows, held in one device's memory (the training
    device): ``gather(rows)`` -> ``(params [B, P] float32, labels [B] int64)`` for store row indices
    ``rows`` (a tensor on that device), with no read of the file and no copy to the device per batch.

    Args:
        store: the :class:`~ssl_ws.data.store.INRStore`.
        rows: the store rows to hold (the training rows).
        device: where to hold them.
    """

    #: with ``data.resident`` unset, rows are held when they take at most this share of the free memory
    MAX_SHARE = 0.25

    def __init__(self, store, rows: np.ndarray, device):
        rows = np.unique(np.asarray(rows, dtype=np.int64))  # sorted: sequential reads
        slot = np.full(len(store), -1, dtype=np.int64)
        slot[rows] = np.arange(len(rows))
        self.device = torch.device(device)
        self.params = torch.from_numpy(np.asarray(store.params[rows], dtype=np.float32)).to(self.device)
        self.labels = torch.from_numpy(np.asarray(store.labels[rows], dtype=np.int64)).to(self.device)
        self.slot = torch.from_numpy(slot).to(self.device)

    @classmethod
    def nbytes(cls, store, rows: np.ndarray) -> int:
        return len(np.unique(rows)) * (int(store.params.shape[1]) * 4 + 8) + len(store) * 8

    @classmethod
    def fits(cls, store, rows: np.ndarray, device) -> bool:
        """Whether the rows take at most :attr:`MAX_SHARE` of ``device``'s free memory (False if unknown)."""
        free = available_memory(device)
        return free is not None and cls.nbytes(store, rows) <= cls.MAX_SHARE * free

    def gather(self, rows: torch.Tensor):
        at = self.slot.index_select(0, rows)  # index_select: a third of advanced indexing's time on a CPU
        return self.params.index_select(0, at), self.labels.index_select(0, at)


class ParamsBatchDataset(Dataset):
    """``dataset[batch_spec] -> {"params" [B, P], "labels" [B], "rows" [B], ...}``, one
    fancy index into the store's memmap per batch (``"params2"`` for pairs); with ``gather=False``
    only the rows (the training device gathers them from its :class:`ResidentRows`)."""

    def __init__(self, store, gather: bool = True):
        self.store = store
        self.gather = bool(gather)

    def __len__(self) -> int:
        return len(self.store.labels)

    def _gather(self, rows: np.ndarray) -> torch.Tensor:
        order = np.argsort(rows, kind="stable")  # sorted reads are sequential on disk
        out = np.empty((len(rows), self.store.params.shape[1]), dtype=np.float32)
        out[order] = self.store.params[rows[order]]
        return torch.from_numpy(out)

    def __getitem__(self, spec: Dict) -> Dict:
        rows = np.asarray(spec["rows"], dtype=np.int64)
        out = {"rows": torch.from_numpy(rows), "key": torch.tensor([spec["epoch"], spec["index"]], dtype=torch.int64)}
        if self.gather:
            out["params"] = self._gather(rows)
            out["labels"] = torch.from_numpy(np.asarray(self.store.labels[rows], dtype=np.int64))
        if "rows2" in spec:
            rows2 = np.asarray(spec["rows2"], dtype=np.int64)
            out["rows2"] = torch.from_numpy(rows2)
            if self.gather:
                out["params2"] = self._gather(rows2)
        return out


class StatefulLoader(DataLoader):
    """A DataLoader over a :class:`BatchIndexSampler` that Lightning can checkpoint.

    ``state_dict()`` records the epoch and the number of batches of it the model has
    consumed (set by the LightningModule through :meth:`mark_consumed`, since the
    loader itself prefetches); ``load_state_dict`` makes the next epoch iterator skip
    them. Lightning calls both (``_Stateful`` protocol) when saving/restoring a fit.
    """

    def __init__(self, dataset: ParamsBatchDataset, sampler: BatchIndexSampler, num_workers: int = 0, pin_memory: bool = False):
        super().__init__(
            dataset,
            batch_size=None,
            sampler=sampler,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=num_workers > 0,
        )
        self.consumed = (0, 0)  # (epoch, batches)

    def mark_consumed(self, epoch: int, n_batches: int) -> None:
        self.consumed = (int(epoch), int(n_batches))

    def state_dict(self) -> Dict:
        return {"epoch": self.consumed[0], "consumed": self.consumed[1], "n_batches": len(self.sampler)}

    def load_state_dict(self, state: Dict) -> None:
        done, epoch = int(state.get("consumed", 0)), int(state.get("epoch", 0))
        if int(state.get("n_batches", -1)) != len(self.sampler):
            return  # different data/batching: start the epoch afresh
        if done >= len(self.sampler):  # saved at the end of an epoch: the next one starts afresh
            epoch, done = epoch + 1, 0
        self.sampler.set_epoch(epoch)
        self.sampler.skip(epoch, done)
        self.consumed = (epoch, done)


def iter_row_chunks(rows: np.ndarray, chunk: int):
    """Consecutive chunks of ``rows`` (for evaluation passes)."""
    for i in range(0, len(rows), chunk):
        yield rows[i : i + chunk]
