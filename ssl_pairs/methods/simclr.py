"""SimCLR (Chen et al. 2020): NT-Xent over the two views of every pair.

The pair's two images (anchor and partner — two crops of one image for
augmented pairs, two images of one class for semantic pairs) are the two views.
By default both go through the encoder in one forward pass (as the reference
TF code does), so BatchNorm statistics span both views of the whole global
batch; ``method.bn_per_view=True`` runs one pass per view instead (as lightly
and solo-learn do), so each view's BatchNorm statistics are its own.
"""

import jax.numpy as jnp

from ssl_pairs import losses
from ssl_pairs.methods.base import EncoderWithHead, Method, collapse_metrics
from ssl_pairs.models import DTYPES
from ssl_pairs.models.heads import MLPHead


class SimCLR(Method):
  """SimCLR with an MLP projector (BN + ReLU hidden layers)."""
  name = 'simclr'
  # method.* settings this method reads (configs/simclr.py sets each).
  KEYS = {
      'temperature': 'τ of the InfoNCE loss',
      'proj_hidden_dim': 'projection MLP hidden width',
      'proj_dim': 'projection output width',
      'proj_layers': 'projection MLP depth (linear layers)',
      'bn_per_view': 'BatchNorm statistics per view instead of per batch',
  }

  def build(self):
    m = self.config.method
    head = MLPHead(hidden_dims=(m.proj_hidden_dim,) * (m.proj_layers - 1),
                   output_dim=m.proj_dim,
                   dtype=DTYPES[self.config.model.dtype],
                   init_scheme=self.head_init)
    return EncoderWithHead(self.backbone, head)

  def loss(self, params, batch_stats, method_state, batch, rng, step):
    del method_state, rng, step
    b = batch['view1'].shape[0]
    if 'positives' in batch:
      return self._multi_positive_loss(params, batch_stats, batch)
    if self.config.method.get('bn_per_view', False):
      # Running statistics see view 1 then view 2, as two torch calls would.
      (_, z1), batch_stats = self.apply(params, batch_stats, batch['view1'])
      (_, z2), batch_stats = self.apply(params, batch_stats, batch['view2'])
      z = jnp.concatenate([z1, z2])
    else:
      x = jnp.concatenate([batch['view1'], batch['view2']])
      (_, z), batch_stats = self.apply(params, batch_stats, x)
    ids = jnp.concatenate([jnp.arange(b), jnp.arange(b)])
    loss = losses.nt_xent(z, ids, self.config.method.temperature)
    return loss, (batch_stats, collapse_metrics(z), {})

  def _multi_positive_loss(self, params, batch_stats, batch):
    """SPPS: both views and the semantic positives share the anchor's id."""
    b, p = batch['positive_mask'].shape
    positives = batch['positives'].reshape((b * p,) +
                                           batch['positives'].shape[2:])
    x = jnp.concatenate([batch['view1'], batch['view2'], positives])
    (_, z), batch_stats = self.apply(params, batch_stats, x)
    ids = jnp.concatenate([jnp.arange(b), jnp.arange(b),
                           jnp.repeat(jnp.arange(b), p)])
    valid = jnp.concatenate([jnp.ones((2 * b,), bool),
                             batch['positive_mask'].reshape(-1)])
    loss = losses.nt_xent(z, ids, self.config.method.temperature, valid=valid)
    return loss, (batch_stats, collapse_metrics(z[:2 * b]), {})
