"""SimCLR pretraining of a weight-space encoder.

Chen et al., "A Simple Framework for Contrastive Learning of Visual
Representations" (ICML 2020), applied to INR weights as in Shamsian et al.
(ICML 2024): two views ``x_a, x_b`` of every INR, ``h = encoder(normalize(x))``,
``z = g(h)`` with the projection head ``g`` (lightly's ``SimCLRProjectionHead``),
and the NT-Xent loss (lightly's ``NTXentLoss``) over the ``2N`` projections of the
batch, each positive pair contrasted against the other ``2N - 2``:

    l(a, b) = -log  exp(sim(z_a, z_b) / T) / sum_{k != a} exp(sim(z_a, z_k) / T)

With ``gather_distributed=True`` the negatives come from the whole global batch
across DDP processes.

Positives (``ssl.positives``):

* ``same_fit``: two independent augmentations of the same fitted INR;
* ``two_views``: one augmentation each of two *different* fits of the same image
  (the multi-view data set of Shamsian et al.); with ``ssl.view_mixup`` each view is
  an aligned MixUp of the two fits (partner permuted onto the anchor by weight
  matching, ``lam ~ Beta(alpha, alpha)``), a view generator that interpolates
  between fits of one object.

A preset's own MixUp part (``paper+selfmix`` ...) is applied to each view after its
per-view transforms, label-free.
"""

from __future__ import annotations

from typing import Dict

import torch

from ..augment import MixUp, TwoViews, preset
from .base import WeightSpaceModule



def train_unit(positives: str) -> str:
    """The sampling unit of ``ssl.positives``: an object with two of its fits (``two_views``) or one row."""
    return "pairs" if positives == "two_views" else "rows"


class SimCLRModule(WeightSpaceModule):
    """Encoder + projection head trained with NT-Xent (see module docstring)."""

    def __init__(self, cfg, spec, encoder, normalizer):
        super().__init__(cfg, spec, encoder, normalizer, train_unit(cfg.ssl.positives))
        ssl = self.cfg.ssl
        from lightly.loss import NTXentLoss
        from lightly.models.modules import SimCLRProjectionHead

        self.projection = SimCLRProjectionHead(int(encoder.out_dim), int(ssl.proj_hidden), int(ssl.proj_out))
        self.criterion = NTXentLoss(temperature=float(ssl.temperature), gather_distributed=True)
        acfg = self.cfg.augment
        t1 = preset(acfg.preset)
        t2 = preset(acfg.preset2) if acfg.preset2 else t1
        self.views = TwoViews(t1, t2)
        self.view_mixup = MixUp("aligned", alpha=float(ssl.view_mixup_alpha)) if ssl.view_mixup else None

    def make_views(self, batch: Dict, generator: torch.Generator):
        if self.train_unit == "rows":
            return self.views(self.batch_weights(batch), generator)
        a, b = self.batch_weights(batch, "params"), self.batch_weights(batch, "params2")
        if self.view_mixup is not None:
            a, b = self.view_mixup.mix(a, generator=generator, partner_ws=b)[0], self.view_mixup.mix(b, generator=generator, partner_ws=a)[0]
        return self.views.t1(a, generator), self.views.t2(b, generator)

    def _post_mix(self, pipeline, ws, generator):
        mix = pipeline.mixup
        return mix.mix(ws, generator=generator)[0] if mix is not None else ws

    def training_step(self, batch: Dict, batch_idx: int):
        g = self.generator_for(batch)
        v1, v2 = self.make_views(batch, g)
        v1, v2 = self._post_mix(self.views.t1, v1, g), self._post_mix(self.views.t2, v2, g)
        z1 = self.projection(self.encode(v1))
        z2 = self.projection(self.encode(v2))
        loss = self.criterion(z1, z2)
        n = len(v1)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=n, sync_dist=True)
        self.log("train/global_batch", float(n * self.trainer.world_size), on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        self.mark_consumed(batch)
        # the projections ride along (detached) for callbacks such as callbacks.FirstStepDump
        return {"loss": loss, "z1": z1.detach(), "z2": z2.detach()}
