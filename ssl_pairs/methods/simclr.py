"""SimCLR (Chen et al. 2020): NT-Xent over the two views of every pair.

The pair's two images (anchor and partner — two crops of one image for
augmented pairs, two images of one class for semantic pairs) are the two views.
Both go through the encoder in one forward pass (as the reference TF code does),
so BatchNorm statistics span both views of the whole global batch.
"""

import jax.numpy as jnp

from ssl_pairs import losses
from ssl_pairs.methods.base import EncoderWithHead, Method, collapse_metrics
from ssl_pairs.models import DTYPES
from ssl_pairs.models.heads import MLPHead


class SimCLR(Method):
  """SimCLR with an MLP projector (BN + ReLU hidden layers)."""
  name = 'simclr'

  def build(self):
    m = self.config.method
    head = MLPHead(hidden_dims=(m.proj_hidden_dim,) * (m.proj_layers - 1),
                   output_dim=m.proj_dim,
                   dtype=DTYPES[self.config.model.dtype])
    return EncoderWithHead(self.backbone, head)

  def loss(self, params, batch_stats, method_state, batch, rng, step):
    del method_state, rng, step
    b = batch['view1'].shape[0]
    x = jnp.concatenate([batch['view1'], batch['view2']])
    (_, z), batch_stats = self.apply(params, batch_stats, x)
    ids = jnp.concatenate([jnp.arange(b), jnp.arange(b)])
    loss = losses.nt_xent(z, ids, self.config.method.temperature)
    return loss, (batch_stats, collapse_metrics(z), {})
