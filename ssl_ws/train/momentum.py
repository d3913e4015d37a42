r"""BYOL: a momentum teacher instead of negatives.

Grill et al., "Bootstrap Your Own Latent" (NeurIPS 2020). The online network is the
encoder, a projection head ``g`` and a prediction head ``q`` (lightly's
``BYOLProjectionHead`` / ``BYOLPredictionHead``: ``encoder.out_dim -> ssl.proj_hidden ->
ssl.proj_out`` and ``ssl.proj_out -> ssl.proj_hidden -> ssl.proj_out``); the teacher is
an exponential moving average of the encoder and ``g`` (no gradient). For the two views
of every object (:mod:`ssl_ws.train.two_views`)::

    l = 1/2 [ -cos(q(g(f(x_a))), g'(f'(x_b))) - cos(q(g(f(x_b))), g'(f'(x_a))) ]
    theta' <- m theta' + (1 - m) theta,   m = 1 - (1 - m_0) (cos(pi t / T) + 1) / 2

(lightly's ``NegativeCosineSimilarity``, ``update_momentum`` and ``cosine_schedule``; ``t``
the optimizer step, ``T`` = ``trainer.max_steps``). Option ``ssl.options.momentum``
(``m_0``, default 0.99). The embedding evaluated and exported is the online encoder's.
The teacher is part of the module's state, so a resumed run continues exactly.
"""

from __future__ import annotations

import copy

import torch

from ..models.base import encode_weights
from .two_views import TwoViewModule


class BYOLModule(TwoViewModule):
    """Online encoder + projection + prediction heads, EMA teacher (see module docstring)."""

    OPTIONS = {"momentum": 0.99}
    OPTION_MAX = {"momentum": 1.0}

    def __init__(self, cfg, spec, encoder, normalizer):
        super().__init__(cfg, spec, encoder, normalizer)
        from lightly.loss import NegativeCosineSimilarity
        from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
        from lightly.models.utils import deactivate_requires_grad

        ssl = self.cfg.ssl
        hidden, out = int(ssl.proj_hidden), int(ssl.proj_out)
        self.projection = BYOLProjectionHead(int(encoder.out_dim), hidden, out)
        self.prediction = BYOLPredictionHead(out, hidden, out)
        self.teacher_encoder = copy.deepcopy(encoder)
        self.teacher_projection = copy.deepcopy(self.projection)
        deactivate_requires_grad(self.teacher_encoder)
        deactivate_requires_grad(self.teacher_projection)
        self.criterion = NegativeCosineSimilarity()

    def momentum(self) -> float:
        from lightly.utils.scheduler import cosine_schedule

        return cosine_schedule(int(self.global_step), max(self.total_steps(), 1), float(self.option("momentum")), 1.0)

    def pair_loss(self, v1, v2):
        from lightly.models.utils import update_momentum

        m = self.momentum()
        update_momentum(self.encoder, self.teacher_encoder, m)
        update_momentum(self.projection, self.teacher_projection, m)
        p1 = self.prediction(self.projection(self.encode(v1)))
        p2 = self.prediction(self.projection(self.encode(v2)))
        with torch.no_grad():
            t1 = self.teacher_projection(encode_weights(self.teacher_encoder, self.normalizer, v1))
            t2 = self.teacher_projection(encode_weights(self.teacher_encoder, self.normalizer, v2))
        loss = 0.5 * (self.criterion(p1, t2) + self.criterion(p2, t1))
        return {"loss": loss, "z1": p1.detach(), "z2": p2.detach()}
