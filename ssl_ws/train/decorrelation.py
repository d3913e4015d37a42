r"""Non-contrastive objectives that decorrelate the projections: VICReg and Barlow Twins.

Both use lightly's ``BarlowTwinsProjectionHead`` ``g`` (``encoder.out_dim -> ssl.proj_hidden ->
ssl.proj_hidden -> ssl.proj_out``, BatchNorm), ``z_a = g(h_a), z_b = g(h_b)`` of the two views
(:mod:`ssl_ws.train.two_views`), no negatives.

* **VICReg** (Bardes, Ponce, LeCun, ICLR 2022), lightly's ``VICRegLoss``, options
  ``ssl.options.{lambda_param, mu_param, nu_param}`` (defaults 25, 25, 1)::

      l = lambda * mean ||z_a - z_b||^2                      (invariance)
        + mu * [v(z_a) + v(z_b)]                             (variance: v = mean_d relu(1 - sqrt(Var_d + eps)))
        + nu * [c(z_a) + c(z_b)]                             (covariance: off-diagonal Cov^2 / D)

* **Barlow Twins** (Zbontar et al., ICML 2021), lightly's ``BarlowTwinsLoss``, ``C`` the
  cross-correlation of the batch-standardized ``z_a, z_b``, option ``ssl.options.lambda_param``
  (default 0.005): ``l = sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2``.
"""

from __future__ import annotations

from .two_views import TwoViewModule


class _DecorrelationModule(TwoViewModule):
    def __init__(self, cfg, spec, encoder, normalizer):
        super().__init__(cfg, spec, encoder, normalizer)
        from lightly.models.modules import BarlowTwinsProjectionHead

        ssl = self.cfg.ssl
        self.projection = BarlowTwinsProjectionHead(int(encoder.out_dim), int(ssl.proj_hidden), int(ssl.proj_out))
        self.criterion = self.make_criterion()

    def make_criterion(self):
        raise NotImplementedError


class VICRegModule(_DecorrelationModule):
    """Encoder + projection head trained with VICReg (see module docstring)."""

    OPTIONS = {"lambda_param": 25.0, "mu_param": 25.0, "nu_param": 1.0}

    def make_criterion(self):
        from lightly.loss import VICRegLoss

        o = self.options
        return VICRegLoss(lambda_param=o["lambda_param"], mu_param=o["mu_param"], nu_param=o["nu_param"],
                          gather_distributed=True)


class BarlowTwinsModule(_DecorrelationModule):
    """Encoder + projection head trained with Barlow Twins (see module docstring)."""

    OPTIONS = {"lambda_param": 0.005}

    def make_criterion(self):
        from lightly.loss import BarlowTwinsLoss

        return BarlowTwinsLoss(lambda_param=self.options["lambda_param"], gather_distributed=True)
