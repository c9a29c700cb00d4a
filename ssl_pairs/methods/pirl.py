"""PIRL (Misra & van der Maaten 2020): invariance to a jigsaw of the partner.

f(anchor view) = Linear(backbone(anchor)); g(partner) = Linear(concat of the
backbone's features of the partner's 3×3 patches, shuffled by a random
permutation). A memory bank ``m`` [num_images, D] holds an EMA (0.5) of f of
every anchor image. Loss = ½·NCE(g, m_anchor) + ½·NCE(f, m_anchor) with
``num_negatives`` bank entries drawn at random as negatives, τ = 0.07.

The negatives are drawn uniformly from the whole bank, as the reference
implementation does (VISSL's ``NCELossWithMemory`` draws them from all rows and
only then writes the positive into slot 0), so the anchor's own row can be among
them: with 20,000 images and 4,096 negatives a given anchor's row is drawn with
probability 1 − (1 − 1/20000)^4096 ≈ 18.5 %, adding one copy of the positive's
term to the denominator. We keep the reference's estimator so our PIRL numbers
are the method as published; ``tests/test_methods.py`` checks the NCE and
InfoNCE forms against hand-computed values.

``objective='infonce'`` (default) is the softmax form; ``'nce'`` is PIRL's
noise-contrastive form h(v, m) = e^{s/τ} / (e^{s/τ} + k·Z/N), where Z/N is
estimated from the batch (Wu et al. 2018 fix it after the first iterations).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from ssl_pairs import losses
from ssl_pairs.losses import l2_normalize
from ssl_pairs.errors import unknown_name_error
from ssl_pairs.methods.base import Method, collapse_metrics
from ssl_pairs.models import DTYPES



def jigsaw_patches(images, rng, grid: int = 3):
  """[B, S, S, C] → [B, grid², p, p, C] patches, shuffled per image.

  The image is cropped to grid·p (p = S // grid) from the top-left corner;
  each image gets its own random permutation of the patches.
  """
  b, size, _, c = images.shape
  p = size // grid
  x = images[:, :grid * p, :grid * p]
  x = x.reshape(b, grid, p, grid, p, c).transpose(0, 1, 3, 2, 4, 5)
  x = x.reshape(b, grid * grid, p, p, c)
  perms = jax.vmap(lambda k: jax.random.permutation(k, grid * grid))(
      jax.random.split(rng, b))
  return jnp.take_along_axis(x, perms[:, :, None, None, None], axis=1)


class PIRLNet(nn.Module):
  """Shared trunk with f (whole image) and g (jigsaw) heads."""
  backbone: nn.Module
  dim: int
  dtype: object = jnp.float32

  def setup(self):
    self.f_head = nn.Dense(self.dim, dtype=self.dtype)
    self.g_head = nn.Dense(self.dim, dtype=self.dtype)

  def f_branch(self, x, train: bool = True):
    h = self.backbone(x, train=train)
    return h, self.f_head(h).astype(jnp.float32)

  def g_branch(self, patches, train: bool = True):
    b, n = patches.shape[:2]
    hp = self.backbone(patches.reshape((b * n,) + patches.shape[2:]),
                       train=train)
    return self.g_head(hp.reshape(b, -1)).astype(jnp.float32)

  def __call__(self, x, train: bool = True):
    h, f = self.f_branch(x, train)
    return h, f, self.g_branch(jigsaw_patches(x, jax.random.key(0)), train)


class PIRL(Method):
  """PIRL with a memory bank in the train state."""
  name = 'pirl'
  # method.* settings this method reads (configs/pirl.py sets each).
  KEYS = {
      'proj_dim': 'embedding (memory bank) width',
      'temperature': 'NCE temperature',
      'num_negatives': 'bank negatives per step',
      'bank_momentum': 'memory bank update momentum',
      'jigsaw_weight': 'λ, jigsaw/partner term vs bank term',
      'objective': "'infonce' or 'nce'",
  }

  def build(self):
    return PIRLNet(self.backbone, self.config.method.proj_dim,
                   DTYPES[self.config.model.dtype])

  def init_method_state(self, rng, variables):
    del variables
    bank = jax.random.normal(rng, (self.run.num_images,
                                   self.config.method.proj_dim))
    return {'bank': l2_normalize(bank)}

  def _contrast(self, v, positive, negatives):
    m = self.config.method
    if m.objective == 'infonce':
      return losses.moco_infonce(v, positive, negatives, m.temperature)
    if m.objective != 'nce':
      raise unknown_name_error('method.objective', m.objective,
                               ('infonce', 'nce'))
    k = negatives.shape[0]
    s_pos = jnp.sum(v * positive, -1) / m.temperature
    s_neg = v @ negatives.T / m.temperature
    # Noise term k·P_n with the partition function Z/N estimated from the
    # mean of e^{s} over the sampled entries (constant w.r.t. gradients).
    log_noise = jnp.log(k) + jax.lax.stop_gradient(
        jax.nn.logsumexp(s_neg) - jnp.log(s_neg.size))
    log_h_pos = s_pos - jnp.logaddexp(s_pos, log_noise)
    log_1m_h_neg = log_noise - jnp.logaddexp(s_neg, log_noise)
    return -jnp.mean(log_h_pos + log_1m_h_neg.sum(-1))

  def loss(self, params, batch_stats, method_state, batch, rng, step):
    del step
    m = self.config.method
    perm_rng, neg_rng = jax.random.split(rng)
    variables = {'params': params, 'batch_stats': batch_stats}
    (_, f), updates = self.net.apply(variables, batch['view1'],
                                     method=PIRLNet.f_branch,
                                     mutable=['batch_stats'])
    # The patches are normalised with their own batch statistics, but they
    # must not update the running statistics used to evaluate whole images.
    g, _ = self.net.apply(variables, jigsaw_patches(batch['view2'], perm_rng),
                          method=PIRLNet.g_branch, mutable=['batch_stats'])
    batch_stats = updates['batch_stats']
    f, g = l2_normalize(f), l2_normalize(g)
    bank = method_state['bank']
    positive = bank[batch['index']]
    negatives = bank[jax.random.randint(neg_rng, (m.num_negatives,), 0,
                                        bank.shape[0])]
    loss = (m.jigsaw_weight * self._contrast(g, positive, negatives) +
            (1 - m.jigsaw_weight) * self._contrast(f, positive, negatives))
    return loss, (batch_stats, collapse_metrics(f),
                  {'index': batch['index'], 'f': jax.lax.stop_gradient(f)})

  def after_update(self, old_state, new_state, extras):
    bank = old_state.method_state['bank']
    idx = extras['index']
    mixed = self.config.method.bank_momentum * bank[idx] + (
        1 - self.config.method.bank_momentum) * extras['f']
    return new_state.replace(
        method_state={'bank': bank.at[idx].set(l2_normalize(mixed))})
