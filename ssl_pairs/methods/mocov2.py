"""MoCo v2 (Chen et al. 2020): queries against momentum-encoder keys and a queue.

The anchor's view is the query, the partner's view the key (and the reverse
as well with ``symmetric=True``, the "v2+" form). The key encoder is an EMA of
the query encoder (cosine schedule from ``ema_base`` to 1), and the queue of
past keys is a [K, D] array in ``method_state``, both updated inside the step.

BatchNorm is shuffled as in MoCo (§3.3 of its paper): both encoders compute
their statistics over ``shuffle_bn_groups`` groups of samples, as on that many
GPUs without sync-BN, and the keys' samples are randomly permuted across the
groups first, so that no query shares its statistics with its own positive key.
With one group (global BN over the batch) the model can tell this batch's keys
from the queue's by their shared batch statistics instead of by their content
(MoCo's "cheating"); ``shuffle_bn_groups=1`` gives that global BN.
"""

import jax
import jax.numpy as jnp

from ssl_pairs import losses
from ssl_pairs.losses import l2_normalize
from ssl_pairs.errors import UserError
from ssl_pairs.methods.base import (EncoderWithHead, Method, collapse_metrics,
                                    cosine_ema_momentum, ema)
from ssl_pairs.models import DTYPES
from ssl_pairs.models.heads import MLPHead



def queue_drift(queue, keys, method_state):
  """Mean cosine of this step's keys [n, D] with the queue's newest n keys
  ('queue_cos_newest') and its oldest n, about to be overwritten
  ('queue_cos_oldest'). A large gap means the embedding drifts faster than
  the queue turns over: old keys are easy negatives and the loss falls
  without the features improving (BENCHMARKS.md, MoCo v2 at CPU scale)."""
  n, ptr = keys.shape[0], method_state['queue_ptr']
  newest = jax.lax.dynamic_slice_in_dim(queue, (ptr - n) % queue.shape[0], n)
  oldest = jax.lax.dynamic_slice_in_dim(queue, ptr, n)
  k = keys.astype(jnp.float32)
  return {'queue_cos_newest': jnp.mean(k @ newest.T.astype(jnp.float32)),
          'queue_cos_oldest': jnp.mean(k @ oldest.T.astype(jnp.float32))}


class MoCoV2(Method):
  """MoCo v2(+) with an MLP head and a queue of negatives."""
  name = 'mocov2'
  # method.* settings this method reads (configs/mocov2.py sets each).
  KEYS = {
      'temperature': 'τ of the InfoNCE loss',
      'proj_hidden_dim': 'projection MLP hidden width',
      'proj_dim': 'projection output (key) width',
      'queue_size': 'keys kept in the queue',
      'ema_base': 'key encoder momentum',
      'symmetric': 'both views are queries and keys',
      'shuffle_bn_groups': 'BatchNorm over this many shuffled groups',
  }

  def build(self):
    m = self.config.method
    return EncoderWithHead(self.backbone, MLPHead(
        (m.proj_hidden_dim,), m.proj_dim,
        dtype=DTYPES[self.config.model.dtype], init_scheme=self.head_init))

  def init_method_state(self, rng, variables):
    m = self.config.method
    keys_per_step = self.config.batch_size * (2 if m.symmetric else 1)
    groups = m.get('shuffle_bn_groups', 1)
    if groups < 1 or self.config.batch_size % groups:
      raise UserError(f'method.shuffle_bn_groups={groups} must be a positive '
                      f'divisor of batch_size={self.config.batch_size}; 1 '
                      'keeps BatchNorm global over the batch.')
    if m.queue_size % keys_per_step:
      raise UserError(f'method.queue_size={m.queue_size} must be a multiple of '
                      f'the {keys_per_step} keys enqueued per step (batch_size'
                      f'{" × 2 views" if m.symmetric else ""}).')
    queue = l2_normalize(jax.random.normal(rng, (m.queue_size, m.proj_dim)))
    return {'target_params': jax.tree.map(jnp.copy, variables['params']),
            'target_batch_stats': jax.tree.map(jnp.copy,
                                               variables['batch_stats']),
            'queue': queue, 'queue_ptr': jnp.zeros((), jnp.int32)}

  def loss(self, params, batch_stats, method_state, batch, rng, step):
    del step
    m = self.config.method
    groups = m.get('shuffle_bn_groups', 1)
    b = batch['view1'].shape[0]
    x = jnp.concatenate([batch['view1'], batch['view2']])
    (_, z), batch_stats = self.apply_in_groups(params, batch_stats, x, groups)
    key_input, pos_keys, mask = x, None, None
    if 'positives' in batch:
      # SPPS: the semantic positives' keys join the partner's as positives
      # (the multi-positive form of moco_infonce); only the queries' views
      # are enqueued.
      p = batch['positive_mask'].shape[1]
      key_input = jnp.concatenate([x, batch['positives'].reshape(
          (b * p,) + batch['positives'].shape[2:])])
    # Shuffle BN: the keys' samples are permuted across the groups, then put
    # back in order.
    if groups > 1:
      perm = jax.random.permutation(rng, key_input.shape[0])
      key_input = key_input[perm]
    (_, zk), target_stats = self.apply_in_groups(
        method_state['target_params'], method_state['target_batch_stats'],
        key_input, groups)
    if groups > 1:
      zk = zk[jnp.argsort(perm)]
    q = l2_normalize(z)
    k = jax.lax.stop_gradient(l2_normalize(zk))
    if 'positives' in batch:
      pos_keys = k[2 * b:].reshape(b, p, -1)
      mask = jnp.concatenate([jnp.ones((b, 1), bool),
                              batch['positive_mask'].astype(bool)], axis=1)
      k = k[:2 * b]

    def keys_for(partner_keys):
      if pos_keys is None:
        return partner_keys
      return jnp.concatenate([partner_keys[:, None], pos_keys], axis=1)

    queue = method_state['queue']
    loss = losses.moco_infonce(q[:b], keys_for(k[b:]), queue, m.temperature,
                               mask)
    enqueue = k[b:]
    if m.symmetric:
      loss = 0.5 * (loss + losses.moco_infonce(q[b:], keys_for(k[:b]), queue,
                                               m.temperature, mask))
      enqueue = k
    return loss, (batch_stats,
                  dict(collapse_metrics(z), **queue_drift(queue, enqueue,
                                                          method_state)),
                  {'keys': enqueue, 'target_batch_stats': target_stats})

  def after_update(self, old_state, new_state, extras):
    s = old_state.method_state
    tau = cosine_ema_momentum(self.config.method.ema_base, old_state.step,
                              self.run.total_steps)
    keys = extras['keys']
    queue = jax.lax.dynamic_update_slice(s['queue'], keys.astype(
        s['queue'].dtype), (s['queue_ptr'], 0))
    return new_state.replace(method_state={
        'target_params': ema(s['target_params'], new_state.params, tau),
        'target_batch_stats': extras['target_batch_stats'],
        'queue': queue,
        'queue_ptr': (s['queue_ptr'] + keys.shape[0]) % queue.shape[0]})
