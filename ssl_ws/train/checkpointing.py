"""Checkpoints a crash, a full disk or a copied run directory cannot spoil.

* :class:`AtomicCheckpointIO` -- every checkpoint is written to a temporary file beside its
  final path, flushed to disk and renamed over it (``os.replace``): a reader sees the old
  checkpoint or the new one, never a truncated file (Lightning's own writer opens the final
  path for writing, so a full disk leaves a truncated ``best.ckpt``).
* :class:`RunCheckpoint` -- Lightning's ``ModelCheckpoint`` whose saved state follows the run
  directory: a run copied or moved elsewhere and resumed keeps its best score and overwrites
  its own ``best.ckpt`` (Lightning would forget the score, because the recorded paths point into
  the old directory, and write ``best-v1.ckpt`` beside a stale ``best.ckpt``), and never
  deletes a file in the directory it was copied from.
"""

from __future__ import annotations

import os

import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to ``<path>.tmp-<pid>``, ``fsync``, ``os.replace`` onto ``path``."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = os.fspath(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            with open(tmp, "wb") as fh:
                torch.save(checkpoint, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose restored state is re-rooted in this run directory (module docstring)."""

    @property
    def state_key(self) -> str:
        # the key Lightning's own class gives: checkpoints written before this class restore into it. Made of
        # the triggers set at construction; kept, since Lightning asks for it at every hook of every step
        key = self.__dict__.get("_ssl_ws_state_key")
        if key is None:
            key = super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)
            self.__dict__["_ssl_ws_state_key"] = key
        return key

    def load_state_dict(self, state_dict) -> None:
        old = state_dict.get("dirpath")
        new = self.dirpath
        if old and new and os.path.abspath(old) != os.path.abspath(new):
            state_dict = dict(state_dict)

            def moved(p):
                if not isinstance(p, str) or not p:
                    return p
                q = os.path.join(new, os.path.relpath(p, old)) if p.startswith(old) else p
                return q if os.path.exists(q) else ""

            for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
                if key in state_dict:
                    state_dict[key] = moved(state_dict[key])
            if "best_k_models" in state_dict:
                state_dict["best_k_models"] = {moved(p): v for p, v in state_dict["best_k_models"].items()
                                               if moved(p)}
            state_dict["dirpath"] = new
        super().load_state_dict(state_dict)
