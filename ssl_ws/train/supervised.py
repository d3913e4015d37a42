"""Supervised classification of INRs from their weights (and fine-tuning).

``logits = W h + b``, ``h = encoder(normalize(augment(ws)))``, trained with the soft
cross-entropy ``-sum_c y_c log softmax(logits)_c``. With MixUp (``augment.mixup``; Zhang et al.,
ICLR 2018; in weight space :mod:`ssl_ws.augment.mixup`) the INR is ``lam x_i + (1 - lam) pi(x_j)``
and the target ``lam y_i + (1 - lam) y_j``. Views of an object are separate samples
(``data.max_views``). Reported test accuracy: at the evaluation of best validation accuracy
(:class:`~ssl_ws.train.callbacks.SupervisedEvaluation`, ``data.eval_max_views`` views per object).

Fine-tuning: ``pretrained=`` an :class:`~ssl_ws.models.export.EmbeddingModel` (its encoder and
normalizer, not refitted); the encoder learns at ``encoder_lr_factor`` x the head's rate (0
freezes it); the new head sees the features through a BatchNorm without affine parameters
(as MAE's linear probing, He et al., CVPR 2022).
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch
from torch import nn

from ..augment import preset
from .base import MetricSums, WeightSpaceModule


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean of ``-sum_c t_c log softmax(logits)_c`` (``target`` int [B] or soft [B, C])."""
    if target.dim() == 1:
        return nn.functional.cross_entropy(logits, target, label_smoothing=label_smoothing)
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / target.shape[1]
    return -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()


class SupervisedModule(WeightSpaceModule):
    """Encoder + linear head with (soft) cross-entropy (see module docstring).

    Args:
        cfg, spec, encoder, normalizer: as :class:`WeightSpaceModule`.
        num_classes: outputs of the linear head.
        encoder_lr_factor: encoder learning rate = ``optim.lr x`` this (0 freezes).
        feature_norm: standardize the encoder's features before the head (fine-tuning).
    """

    def __init__(self, cfg, spec, encoder, normalizer, num_classes: int,
                 encoder_lr_factor: Optional[float] = None, feature_norm: bool = False):
        super().__init__(cfg, spec, encoder, normalizer, "rows")
        scfg = self.cfg.supervised
        self.num_classes = int(num_classes)
        linear = nn.Linear(int(encoder.out_dim), self.num_classes)
        self.head = nn.Sequential(nn.BatchNorm1d(int(encoder.out_dim), affine=False), linear) if feature_norm else linear
        acfg = self.cfg.augment
        self.augment = preset(acfg.preset, num_classes=self.num_classes, alpha=acfg.mixup_alpha,
                              mixup=acfg.mixup, partner=acfg.mixup_partner)
        self.label_smoothing = float(scfg.label_smoothing)
        self.encoder_lr_factor = float(scfg.encoder_lr_factor if encoder_lr_factor is None else encoder_lr_factor)
        if self.encoder_lr_factor == 0:
            for p in self.encoder.parameters():
                p.requires_grad_(False)
        self.best = None  # the evaluation record of best validation accuracy (SupervisedEvaluation)
        self.loss_sums = MetricSums()  # the training loss since the last evaluation (per step)

    def forward(self, ws):
        return self.head(self.encode(ws))

    def parameter_groups(self):
        groups = [{"params": list(self.head.parameters())}]
        enc = [p for p in self.encoder.parameters() if p.requires_grad]
        if enc:
            groups.append({"params": enc, "lr_factor": self.encoder_lr_factor})
        return groups

    def training_step(self, batch: Dict, batch_idx: int):
        g = None if self.augment.is_identity else self.generator_for(batch)
        ws, target = self.batch_weights(batch), batch["labels"]
        if self.augment.mixup is not None:
            # soft labels given to MixUp: it would check integer labels' range on the host (a sync
            # per step); the store's labels were checked when it was loaded
            target = nn.functional.one_hot(target.long(), self.num_classes).float()
            ws, target = self.augment(ws, g, labels=target)
        else:
            ws = self.augment(ws, g)
        logits = self(ws)
        loss = soft_cross_entropy(logits, target, self.label_smoothing)
        hard = target if target.dim() == 1 else target.argmax(1)
        acc = (logits.argmax(1) == hard).float().mean()
        n = len(ws)
        self.log_train(n, step={"loss": loss}, epoch={"acc": acc})
        self.mark_consumed(batch)
        self.loss_sums.add(1, {"loss": loss})  # the history's loss curve: mean per step since the last evaluation
        return loss

    @torch.no_grad()
    def accuracy(self, rows: np.ndarray) -> float:
        if len(rows) == 0:
            return float("nan")
        was = self.head.training
        self.head.eval()
        logits = self.head(self.embed_rows(rows))
        self.head.train(was)
        return float((logits.argmax(1).cpu() == self.labels_of(rows)).float().mean())

    def pop_mean_train_loss(self) -> Optional[float]:
        """Mean training loss since the previous call (``None`` before any step); one host sync."""
        mean = self.loss_sums.means().get("loss")
        self.loss_sums = MetricSums()
        return mean

    def on_save_checkpoint(self, checkpoint: Dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["ssl_ws_best"] = dict(self.best) if self.best else {}

    def on_load_checkpoint(self, checkpoint: Dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.best = dict(checkpoint.get("ssl_ws_best") or {}) or None
