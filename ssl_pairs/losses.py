"""Pure loss functions — the public functional API of ssl_pairs.

Every function here is a pure function of arrays, computes in float32 whatever the
input dtype (so a bf16 model still gets fp32 reductions), and follows the exact
semantics written in METHODS.md §2, which independent reference checks rely on.
"""

import jax
import jax.numpy as jnp

# A finite stand-in for -inf in masked logits: exp() of it is exactly 0 next to
# any real logit (|s| <= 1/temperature), and unlike -inf it never produces
# NaN gradients through logsumexp of a fully masked row.
_MASKED = -1e9


def _l2_normalize(x, eps=1e-12):
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def nt_xent(z, ids, temperature, valid=None, positive_form='log_sum'):
  """Normalised-temperature cross-entropy with any number of positives.

  Args:
    z: [M, D] embeddings of all views in the batch (any number of views per
      image, in any order).
    ids: [M] integer group ids; b is a positive of anchor a iff b != a and
      ids[b] == ids[a]; every other valid entry is a negative.
    temperature: softmax temperature τ.
    valid: optional [M] bool mask; invalid entries (padding) are neither
      anchors, positives nor negatives.
    positive_form: 'log_sum' (default, METHODS.md): loss_a = −log(Σ_pos e^s /
      Σ_{b≠a} e^s); 'mean_log' (SupCon's L_out): loss_a = −mean_pos log(e^s /
      Σ_{b≠a} e^s). They agree when every anchor has exactly one positive.

  Returns:
    Scalar float32 loss: the mean over valid anchors that have at least one
    positive (0 if there is none). Two views with unique ids give the classic
    SimCLR NT-Xent.
  """
  z = _l2_normalize(z.astype(jnp.float32))
  m = z.shape[0]
  s = (z @ z.T) / temperature
  valid = jnp.ones((m,), bool) if valid is None else valid.astype(bool)
  others = valid[:, None] & valid[None, :] & ~jnp.eye(m, dtype=bool)
  pos = others & (ids[:, None] == ids[None, :])
  log_denominator = jax.nn.logsumexp(jnp.where(others, s, _MASKED), axis=1)
  num_pos = pos.sum(axis=1)
  if positive_form == 'log_sum':
    log_numerator = jax.nn.logsumexp(jnp.where(pos, s, _MASKED), axis=1)
  elif positive_form == 'mean_log':
    log_numerator = jnp.where(pos, s, 0.).sum(axis=1) / jnp.maximum(num_pos, 1)
  else:
    raise ValueError(f"positive_form must be 'log_sum' or 'mean_log', got "
                     f'{positive_form!r}.')
  has_pos = valid & (num_pos > 0)
  per_anchor = jnp.where(has_pos, log_denominator - log_numerator, 0.)
  return per_anchor.sum() / jnp.maximum(has_pos.sum(), 1)
