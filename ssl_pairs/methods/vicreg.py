"""VICReg (Bardes et al. 2022) and Barlow Twins (Zbontar et al. 2021).

Both need no negatives and no momentum encoder: the two views of each pair go
through one expander (Linear → BN → ReLU hidden layers, linear output) and the
loss regularises the batch statistics of the two branches.
"""

import abc

import jax.numpy as jnp

from ssl_pairs import losses
from ssl_pairs.methods.base import EncoderWithHead, Method, collapse_metrics
from ssl_pairs.models import DTYPES
from ssl_pairs.models.heads import MLPHead


class _TwoBranch(Method):
  """Shared build/forward: expander on both views, loss on (z1, z2)."""

  def build(self):
    m = self.config.method
    return EncoderWithHead(self.backbone, MLPHead(
        (m.proj_hidden_dim,) * (m.proj_layers - 1), m.proj_dim,
        dtype=DTYPES[self.config.model.dtype], init_scheme=self.head_init))

  @abc.abstractmethod
  def pair_loss(self, z1, z2):
    """The method's loss on the two branches, and its terms to log."""

  def loss(self, params, batch_stats, method_state, batch, rng, step):
    del method_state, rng, step
    b = batch['view1'].shape[0]
    x = jnp.concatenate([batch['view1'], batch['view2']])
    (_, z), batch_stats = self.apply(params, batch_stats, x)
    loss, terms = self.pair_loss(z[:b], z[b:])
    return loss, (batch_stats, {**collapse_metrics(z), **terms}, {})


class VICReg(_TwoBranch):
  """Variance-invariance-covariance regularisation (25 / 25 / 1)."""
  name = 'vicreg'
  # method.* settings this method reads (configs/vicreg.py sets each).
  KEYS = {
      'proj_hidden_dim': 'expander hidden width',
      'proj_dim': 'expander output width',
      'proj_layers': 'expander depth',
      'sim_weight': 'λ, invariance weight',
      'var_weight': 'μ, variance weight',
      'cov_weight': 'ν, covariance weight',
  }

  def pair_loss(self, z1, z2):
    m = self.config.method
    sim, var, cov = losses.vicreg_terms(z1, z2)
    loss = m.sim_weight * sim + m.var_weight * var + m.cov_weight * cov
    return loss, {'vicreg_sim': sim, 'vicreg_var': var, 'vicreg_cov': cov}


class BarlowTwins(_TwoBranch):
  """Cross-correlation to the identity (λ = 0.0051)."""
  name = 'barlow'
  # method.* settings this method reads (configs/barlow.py sets each).
  KEYS = {
      'proj_hidden_dim': 'projector hidden width',
      'proj_dim': 'projector output width',
      'proj_layers': 'projector depth',
      'lambd': 'weight of the off-diagonal terms',
      'scale': 'scale of the loss',
  }

  def pair_loss(self, z1, z2):
    m = self.config.method
    return losses.barlow_twins_loss(z1, z2, m.lambd, m.scale), {}
