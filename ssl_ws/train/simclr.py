"""SimCLR pretraining of a weight-space encoder.

Chen et al., "A Simple Framework for Contrastive Learning of Visual
Representations" (ICML 2020), applied to INR weights as in Shamsian et al.
(ICML 2024): two views ``x_a, x_b`` of every INR (:mod:`ssl_ws.train.two_views`),
``h = encoder(normalize(x))``, ``z = g(h)`` with the projection head ``g`` (lightly's
``SimCLRProjectionHead``, ``ssl.proj_hidden`` -> ``ssl.proj_out``), and the NT-Xent loss
(lightly's ``NTXentLoss``, temperature ``ssl.temperature``) over the ``2N`` projections
of the batch, each positive pair contrasted against the other ``2N - 2``:

    l(a, b) = -log  exp(sim(z_a, z_b) / T) / sum_{k != a} exp(sim(z_a, z_k) / T)

With ``gather_distributed=True`` the negatives come from the whole global batch
across DDP processes.
"""

from __future__ import annotations

from .two_views import TwoViewModule


class SimCLRModule(TwoViewModule):
    """Encoder + projection head trained with NT-Xent (see module docstring)."""

    def __init__(self, cfg, spec, encoder, normalizer):
        super().__init__(cfg, spec, encoder, normalizer)
        ssl = self.cfg.ssl
        from lightly.loss import NTXentLoss
        from lightly.models.modules import SimCLRProjectionHead

        self.projection = SimCLRProjectionHead(int(encoder.out_dim), int(ssl.proj_hidden), int(ssl.proj_out))
        self.criterion = NTXentLoss(temperature=float(ssl.temperature), gather_distributed=True)
