"""Linear probe: L2-regularised softmax regression on frozen features, by L-BFGS.

Objective (per l2 value λ): mean cross-entropy of ``x W + b`` + λ/2·‖W‖² (the
bias is not penalised), on features standardised with the training mean and
std. It is convex, so L-BFGS (optax's, with a zoom line search) solves it to
convergence — no learning rate or epoch count to tune. λ is chosen on a
stratified 10 % held-out part of the training features from a log-spaced grid
(all grid values are fitted at once with ``vmap``); the probe is then refitted
on all training features with the chosen λ and scored on the test split.
"""

from typing import Dict, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu

DEFAULT_L2_GRID = tuple(10.0**e for e in range(-6, 1))


def _objective(params, x, y, l2):
  logits = x @ params['w'] + params['b']
  ce = jnp.mean(jax.nn.logsumexp(logits, axis=1) -
                jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0])
  return ce + 0.5 * l2 * jnp.sum(params['w']**2)


def _fit_one(x, y, l2, num_classes: int, max_iter: int, tol: float):
  """L-BFGS to a gradient norm below ``tol`` (or ``max_iter`` iterations)."""
  params = {'w': jnp.zeros((x.shape[1], num_classes), jnp.float32),
            'b': jnp.zeros((num_classes,), jnp.float32)}
  fun = lambda p: _objective(p, x, y, l2)
  opt = optax.lbfgs()
  value_and_grad = optax.value_and_grad_from_state(fun)

  def body(carry):
    p, state = carry
    value, grad = value_and_grad(p, state=state)
    updates, state = opt.update(grad, state, p, value=value, grad=grad,
                                value_fn=fun)
    return optax.apply_updates(p, updates), state

  def keep_going(carry):
    _, state = carry
    count = otu.tree_get(state, 'count')
    grad_norm = otu.tree_norm(otu.tree_get(state, 'grad'))
    return (count == 0) | ((count < max_iter) & (grad_norm >= tol))

  params, state = jax.lax.while_loop(keep_going, body,
                                     (params, opt.init(params)))
  grad_norm = otu.tree_norm(jax.grad(fun)(params))
  return params, otu.tree_get(state, 'count'), grad_norm


def fit_softmax(x, y, num_classes: int, l2s: Sequence[float],
                max_iter: int = 1000, tol: float = 1e-5):
  """Fits one probe per λ in ``l2s`` (vmapped).

  Args:
    x: float [N, D] (already standardised); y: int [N].
    num_classes: C.
    l2s: λ values.
    max_iter, tol: L-BFGS stopping rule (iterations, gradient norm).

  Returns:
    (params {'w': [L, D, C], 'b': [L, C]}, iterations [L], final gradient
    norms [L]).
  """
  fit = jax.jit(jax.vmap(
      lambda l2: _fit_one(jnp.asarray(x), jnp.asarray(y), l2, num_classes,
                          max_iter, tol)))
  return jax.device_get(fit(jnp.asarray(l2s, jnp.float32)))


def _predict(params, x):
  return np.argmax(x @ params['w'] + params['b'], axis=-1)


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int):
  """(train indices, held-out indices): ``fraction`` of every class held out."""
  rng = np.random.default_rng([seed, 0x401D])
  held = []
  for c in np.unique(labels):
    members = np.nonzero(labels == c)[0]
    k = int(round(fraction * len(members)))
    if len(members) > 1:
      k = min(max(k, 1), len(members) - 1)
      held.append(rng.choice(members, k, replace=False))
  held = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
  keep = np.setdiff1d(np.arange(len(labels)), held)
  return keep, held


def linear_probe(train_features, train_labels, test_features, test_labels,
                 num_classes: int, l2_grid: Sequence[float] = DEFAULT_L2_GRID,
                 holdout: float = 0.1, seed: int = 0, max_iter: int = 1000,
                 tol: float = 1e-5) -> Dict[str, object]:
  """Top-1 accuracy (%) of the L2-regularised softmax probe.

  Returns:
    {'top1': test accuracy, 'l2': chosen λ, 'val_top1': {λ: held-out
    accuracy}, 'iterations': L-BFGS iterations of the final fit,
    'grad_norm': its final gradient norm}.
  """
  xtr = np.asarray(train_features, np.float32)
  ytr = np.asarray(train_labels, np.int32)
  mean, std = xtr.mean(0), xtr.std(0) + 1e-6
  xtr = (xtr - mean) / std
  xte = (np.asarray(test_features, np.float32) - mean) / std
  l2_grid = [float(v) for v in l2_grid]
  val_acc = {}
  if len(l2_grid) > 1:
    fit_idx, val_idx = stratified_holdout(ytr, holdout, seed)
    params, _, _ = fit_softmax(xtr[fit_idx], ytr[fit_idx], num_classes,
                               l2_grid, max_iter, tol)
    for i, l2 in enumerate(l2_grid):
      p = jax.tree.map(lambda a, i=i: a[i], params)
      val_acc[l2] = float(100 * np.mean(_predict(p, xtr[val_idx]) ==
                                        ytr[val_idx]))
    # Ties go to the larger λ (the simpler model).
    best = max(l2_grid, key=lambda l2: (val_acc[l2], l2))
  else:
    best = l2_grid[0]
  params, iters, grad_norm = fit_softmax(xtr, ytr, num_classes, [best],
                                         max_iter, tol)
  p = jax.tree.map(lambda a: a[0], params)
  top1 = float(100 * np.mean(_predict(p, xte) == np.asarray(test_labels)))
  return {'top1': top1, 'l2': best, 'val_top1': val_acc,
          'iterations': int(iters[0]), 'grad_norm': float(grad_norm[0])}
