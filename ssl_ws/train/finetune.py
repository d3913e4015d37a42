"""Fine-tuning a pretrained encoder: the policy behind ``ssl-ws finetune``.

A pretrained :class:`~ssl_ws.models.export.EmbeddingModel` (encoder + its normalizer, not
refitted) gets a new linear head and is trained end to end by :func:`~ssl_ws.train.runs.run_train`
on ``labels_per_class`` labelled training objects per class (all their views), selecting on
the validation split and reporting the test accuracy at the best validation evaluation.

Defaults (chosen on the quickstart encoder, benchmarks/RESULTS.md): the new head learns at
``optim.lr = 1e-2`` and the encoder at ``1e-2 x encoder_lr_factor`` (0.1; 0 freezes it); without an ``augment.*``
setting the run uses the augmentation preset the encoder was pretrained with (recorded in its
file): the paper preset suits 28x28 INRs, not, e.g., 8x8 digits.
"""

from __future__ import annotations

import time
from typing import Dict, Optional, Sequence

import numpy as np

from ..errors import SslWsError

__all__ = ["finetune_config", "run_finetune"]


def finetune_config(ckpt: str, store_path: str, overrides: Sequence[str] = (), config: Optional[str] = None,
                    encoder_lr_factor: float = 0.1, pretrain_config: Optional[Dict] = None):
    """The ``train`` config of a fine-tuning run: the defaults above, then ``config``, then ``overrides``.
    ``pretrain_config``: the config recorded with the encoder, when the caller has read it already."""
    from ..config import load_config
    from ..models.export import load_payload

    if encoder_lr_factor < 0:
        raise SslWsError(f"--encoder-lr-factor must be >= 0, got {encoder_lr_factor}")
    defaults = ["name=finetune", "optim.lr=0.01", f"supervised.encoder_lr_factor={encoder_lr_factor}"]
    if not config and not any(o.startswith("augment.") for o in overrides):
        pre = (pretrain_config if pretrain_config is not None else load_payload(ckpt).get("config")) or {}
        aug = pre.get("augment") if isinstance(pre, dict) else None
        if isinstance(aug, dict) and aug.get("preset"):
            defaults.append(f"augment.preset={aug['preset']}")
            if aug.get("mixup", "none") != "none" and aug.get("mixup_partner") != "view":
                alpha = aug.get("mixup_alpha")
                defaults += [f"augment.mixup={aug['mixup']}", f"augment.mixup_partner={aug['mixup_partner']}",
                             f"augment.mixup_alpha={'null' if alpha is None else alpha}"]
    fixed = [f"data.store={store_path}", f"supervised.pretrained={ckpt}"]
    return load_config("train", config, defaults + list(overrides) + fixed)


def run_finetune(cfg, model, store, per_class: Optional[int] = None, seed: int = 0) -> Dict:
    """Fine-tune ``model`` on ``per_class`` labelled objects per class (``None``: all) of ``store``'s
    training split; returns the run's numbers (test / val accuracy at the best validation
    evaluation, the training set's size, the run directory and history)."""
    from ..eval.embed import check_compatible
    from .runs import run_train

    check_compatible(model, store)
    train_rows = store.rows("train", max_views=cfg.data.max_views)
    if train_rows.size == 0:
        raise SslWsError("split 'train' of the store is empty: nothing to fine-tune on")
    for split in ("val", "test"):
        if store.rows(split).size == 0:
            raise SslWsError(f"split {split!r} of the store is empty: fine-tuning selects on val and reports test")
    train_rows = store.select("train", max_views=cfg.data.max_views, per_class=per_class, seed=seed)

    model.train()  # load_encoder returns eval mode; Lightning keeps a module's mode, so set training mode here
    t0 = time.perf_counter()
    res = run_train(cfg, pretrained=model, train_rows=train_rows, store=store)
    return {
        "test_acc": res.get("test_acc"),
        "val_acc": res.get("val_acc"),
        "best_epoch": res.get("best_epoch"),
        "epochs": res.get("epochs"),
        "labels_per_class": per_class or "all",
        "n_train": int(train_rows.size),
        "train_objects": int(np.unique(store.object_ids[train_rows]).size),
        "encoder_lr_factor": float(cfg.supervised.encoder_lr_factor),
        "run_dir": res.get("run_dir"),
        "best_checkpoint": res.get("best_checkpoint"),
        "history": res.get("history"),
        "seconds": round(time.perf_counter() - t0, 3),
        "train_config": res.get("config", {}),
    }
