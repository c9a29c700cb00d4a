"""Pure loss functions — the public functional API of ssl_pairs.

Every function here is a pure function of arrays, computes in float32 whatever the
input dtype (so a bf16 model still gets fp32 reductions), and follows the exact
semantics stated in docs/methods.md, which independent reference checks rely on.
"""

import jax
import jax.numpy as jnp

# A finite stand-in for -inf in masked logits: exp() of it is exactly 0 next to
# any real logit (|s| <= 1/temperature), and unlike -inf it never produces
# NaN gradients through logsumexp of a fully masked row.
_MASKED = -1e9


def l2_normalize(x, eps=1e-12):
  """x / max(‖x‖, eps) along the last axis."""
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
    positive_form: 'log_sum' (default, docs/methods.md): loss_a = −log(Σ_pos e^s /
      Σ_{b≠a} e^s); 'mean_log' (SupCon's L_out): loss_a = −mean_pos log(e^s /
      Σ_{b≠a} e^s). They agree when every anchor has exactly one positive.

  Returns:
    Scalar float32 loss: the mean over valid anchors that have at least one
    positive (0 if there is none). Two views with unique ids give the classic
    SimCLR NT-Xent.
  """
  z = l2_normalize(z.astype(jnp.float32))
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


def moco_infonce(q, k, queue, temperature, mask=None):
  """MoCo's InfoNCE with a queue of negatives; one or several positives.

  Args:
    q: [N, D] queries (already L2-normalised).
    k: [N, D] keys, or [N, P, D] for P positives per query (SPPS); already
      L2-normalised; treated as constants by the caller (momentum encoder).
    queue: [K, D] negatives (L2-normalised).
    temperature: τ.
    mask: optional [N, P] bool, which of the P keys are real positives.

  Returns:
    Scalar: mean over N of −log(Σ_pos e^{q·k_p/τ} / (Σ_pos e^{q·k_p/τ} +
    Σ_queue e^{q·m/τ})); for P = 1 this is cross-entropy with the positive at
    index 0 of [q·k, q·queueᵀ]/τ.
  """
  q = q.astype(jnp.float32)
  k = k.astype(jnp.float32)
  if k.ndim == 2:
    k = k[:, None, :]
  pos = jnp.einsum('nd,npd->np', q, k) / temperature
  if mask is not None:
    pos = jnp.where(mask.astype(bool), pos, _MASKED)
  neg = q @ queue.astype(jnp.float32).T / temperature
  log_pos = jax.nn.logsumexp(pos, axis=1)
  log_all = jax.nn.logsumexp(jnp.concatenate([pos, neg], axis=1), axis=1)
  return jnp.mean(log_all - log_pos)


def byol_loss(p, z):
  """BYOL: 2 − 2·mean cos(p, sg(z)) over the batch."""
  p = l2_normalize(p.astype(jnp.float32))
  z = l2_normalize(jax.lax.stop_gradient(z).astype(jnp.float32))
  return 2.0 - 2.0 * jnp.mean(jnp.sum(p * z, axis=-1))


def _off_diagonal_sq_sum(c):
  return jnp.sum(c**2) - jnp.sum(jnp.diagonal(c)**2)


def vicreg_loss(z1, z2, sim_weight=25.0, var_weight=25.0, cov_weight=1.0):
  """VICReg, the paper's equation (Bardes et al. 2022).

  sim = MSE(z1, z2) over all elements; var = Σ over both branches of
  mean_j relu(1 − sqrt(Var(z^j) + 1e-4)) (unbiased variance); cov = Σ over
  both branches of Σ_{i≠j} C_ij² / D with C the (N−1)-normalised covariance.
  The authors' released code halves the variance term; this follows the
  equation, as docs/methods.md states.
  """
  sim, var, cov = vicreg_terms(z1, z2)
  return sim_weight * sim + var_weight * var + cov_weight * cov


def vicreg_terms(z1, z2):
  """VICReg's unweighted (sim, var, cov) terms, as ``vicreg_loss`` defines
  them (logged apart, so a run shows which term it is stuck on)."""
  z1 = z1.astype(jnp.float32)
  z2 = z2.astype(jnp.float32)
  n, d = z1.shape
  sim = jnp.mean((z1 - z2)**2)
  var, cov = 0.0, 0.0
  for z in (z1, z2):
    zc = z - z.mean(axis=0)
    std = jnp.sqrt(jnp.var(z, axis=0, ddof=1) + 1e-4)
    var += jnp.mean(jax.nn.relu(1.0 - std))
    c = zc.T @ zc / (n - 1)
    cov += _off_diagonal_sq_sum(c) / d
  return sim, var, cov


def barlow_twins_loss(z1, z2, lambd=0.0051, scale=1.0):
  """Barlow Twins: Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij², C = z̃1ᵀ z̃2 / N.

  Each branch is standardised per feature with the batch mean and biased
  variance (eps 1e-5), as BatchNorm without affine parameters does.
  """
  z1 = z1.astype(jnp.float32)
  z2 = z2.astype(jnp.float32)
  n = z1.shape[0]
  standardise = lambda z: (z - z.mean(0)) / jnp.sqrt(z.var(0) + 1e-5)
  c = standardise(z1).T @ standardise(z2) / n
  on = jnp.sum((1.0 - jnp.diagonal(c))**2)
  return scale * (on + lambd * _off_diagonal_sq_sum(c))


def dino_loss(student_logits, teacher_logits, center, student_temp,
              teacher_temp):
  """DINO cross-entropy between teacher and student views.

  Args:
    student_logits: [V·N, K], V views stacked view-major (the first two are
      the global views).
    teacher_logits: [2·N, K] for the two global views.
    center: [K] (or [1, K]) running centre of the teacher logits.
    student_temp, teacher_temp: temperatures.

  Returns:
    Mean of −Σ P_t log P_s over all (teacher view, student view) pairs with
    different view indices, each averaged over the batch.
  """
  n = teacher_logits.shape[0] // 2
  v = student_logits.shape[0] // n
  t = jax.nn.softmax(
      (jax.lax.stop_gradient(teacher_logits).astype(jnp.float32) -
       jax.lax.stop_gradient(center).astype(jnp.float32)) / teacher_temp,
      axis=-1).reshape(2, n, -1)
  s = jax.nn.log_softmax(student_logits.astype(jnp.float32) / student_temp,
                         axis=-1).reshape(v, n, -1)
  total, terms = 0.0, 0
  for ti in range(2):
    for si in range(v):
      if si == ti:
        continue
      total += jnp.mean(-jnp.sum(t[ti] * s[si], axis=-1))
      terms += 1
  return total / terms


def dino_center(center, teacher_logits, momentum=0.9):
  """EMA of the batch mean of the teacher logits: m·c + (1 − m)·mean."""
  batch_center = jnp.mean(teacher_logits.astype(jnp.float32), axis=0)
  return center * momentum + batch_center * (1.0 - momentum)
