"""BYOL (Grill et al. 2020): predict the EMA target's projection of the other view.

The pair's anchor and partner are the two views. The target network (an EMA of
the online backbone + projector, momentum τ from ``ema_base`` to 1 on a cosine
schedule per step) lives in ``method_state`` and is updated inside the step.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from ssl_pairs import losses
from ssl_pairs.methods.base import (Method, collapse_metrics,
                                    cosine_ema_momentum, ema)
from ssl_pairs.models import DTYPES
from ssl_pairs.models.heads import MLPHead


class OnlineNet(nn.Module):
  """backbone → projector → predictor; returns (features, z, p)."""
  backbone: nn.Module
  projector: nn.Module
  predictor: nn.Module

  def __call__(self, x, train: bool = True):
    h = self.backbone(x, train=train)
    z = self.projector(h, train=train)
    return h, z, self.predictor(z, train=train)


class BYOL(Method):
  """BYOL with the symmetric loss byol(p1, sg(z2')) + byol(p2, sg(z1'))."""
  name = 'byol'
  # method.* settings this method reads (configs/byol.py sets each).
  KEYS = {
      'proj_hidden_dim': 'projection MLP hidden width',
      'proj_dim': 'projection output width',
      'pred_hidden_dim': 'predictor hidden width',
      'ema_base': 'target momentum at step 0 (cosine up to 1)',
  }

  def build(self):
    m, dtype = self.config.method, DTYPES[self.config.model.dtype]
    return OnlineNet(
        self.backbone,
        MLPHead((m.proj_hidden_dim,), m.proj_dim, dtype=dtype,
                init_scheme=self.head_init),
        MLPHead((m.pred_hidden_dim,), m.proj_dim, dtype=dtype,
                init_scheme=self.head_init))

  def init_method_state(self, rng, variables):
    del rng
    return {'target_params': jax.tree.map(jnp.copy, variables['params']),
            'target_batch_stats': jax.tree.map(jnp.copy,
                                               variables['batch_stats'])}

  def loss(self, params, batch_stats, method_state, batch, rng, step):
    del rng, step
    b = batch['view1'].shape[0]
    x = jnp.concatenate([batch['view1'], batch['view2']])
    (_, z, p), batch_stats = self.apply(params, batch_stats, x)
    (_, zt, _), target_stats = self.apply(method_state['target_params'],
                                          method_state['target_batch_stats'], x)
    zt = jax.lax.stop_gradient(zt)
    loss = (losses.byol_loss(p[:b], zt[b:]) +
            losses.byol_loss(p[b:], zt[:b]))
    return loss, (batch_stats, collapse_metrics(z),
                  {'target_batch_stats': target_stats})

  def after_update(self, old_state, new_state, extras):
    tau = cosine_ema_momentum(self.config.method.ema_base, old_state.step,
                              self.run.total_steps)
    target = ema(old_state.method_state['target_params'], new_state.params,
                 tau)
    return new_state.replace(method_state={
        'target_params': target,
        'target_batch_stats': extras['target_batch_stats']})
