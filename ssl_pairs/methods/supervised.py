"""Supervised baseline: cross-entropy on the labels (the papers' upper bound).

Both images of the pair are classified with the anchor's label (for semantic
and augmented pairs both images share it). Uses labels by design — it is the
reference the self-supervised methods are compared with.
"""

import jax
import jax.numpy as jnp

from ssl_pairs.methods.base import EncoderWithHead, Method, collapse_metrics
from ssl_pairs.models import DTYPES
from ssl_pairs.models.heads import LinearHead


class Supervised(Method):
  """Backbone + linear classifier, softmax cross-entropy."""
  name = 'supervised'
  KEYS = {}  # No method.* settings.

  def build(self):
    return EncoderWithHead(self.backbone, LinearHead(
        self.run.num_classes, dtype=DTYPES[self.config.model.dtype]))

  def loss(self, params, batch_stats, method_state, batch, rng, step):
    del method_state, rng, step
    x = jnp.concatenate([batch['view1'], batch['view2']])
    labels = jnp.concatenate([batch['label'], batch['label']])
    (h, logits), batch_stats = self.apply(params, batch_stats, x)
    log_p = jax.nn.log_softmax(logits)
    loss = -jnp.mean(jnp.take_along_axis(log_p, labels[:, None], axis=1))
    metrics = dict(collapse_metrics(h),
                   train_top1=jnp.mean(jnp.argmax(logits, -1) == labels))
    return loss, (batch_stats, metrics, {})
