"""Linear probe: L2-regularised softmax regression on frozen features, by L-BFGS.

Objective (per l2 value λ): mean cross-entropy of ``x W + b`` + λ/2·‖W‖² (the
bias is not penalised), on features standardised with the training mean and
std. It is convex, so L-BFGS (optax's, with a zoom line search) solves it to
convergence — no learning rate or epoch count to tune (stopping rule:
gradient norm below 1e-4 or ``max_iter`` iterations). λ is chosen on a
stratified 10 % held-out part of the training features from a log-spaced grid,
fitted from the largest λ down, each fit warm-started from the previous one;
the probe is then refitted on all training features with the chosen λ and
scored on the test split.
"""

import functools
from typing import Dict, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu

DEFAULT_L2_GRID = tuple(10.0**e for e in range(-5, 0))


def _objective(params, x, y, l2):
  logits = x @ params['w'] + params['b']
  ce = jnp.mean(jax.nn.logsumexp(logits, axis=1) -
                jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0])
  return ce + 0.5 * l2 * jnp.sum(params['w']**2)


@functools.partial(jax.jit, static_argnames=('max_iter', 'tol'))
def _fit_one(x, y, l2, params, max_iter: int, tol: float):
  """L-BFGS from ``params`` to a gradient norm below ``tol`` (or max_iter)."""
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


def fit_softmax(x, y, num_classes: int, l2: float, max_iter: int = 1000,
                tol: float = 1e-4, init=None):
  """Fits the probe for one λ (compiled once per data shape, λ is traced).

  Args:
    x: float [N, D] (already standardised); y: int [N].
    num_classes: C.
    l2: λ.
    max_iter, tol: L-BFGS stopping rule (iterations, gradient norm).
    init: optional starting params {'w': [D, C], 'b': [C]} (warm start);
      zeros by default.

  Returns:
    (params {'w': [D, C], 'b': [C]}, iterations, final gradient norm).
  """
  if init is None:
    init = {'w': jnp.zeros((x.shape[1], num_classes), jnp.float32),
            'b': jnp.zeros((num_classes,), jnp.float32)}
  params, iters, grad_norm = _fit_one(
      jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32),
      jnp.float32(l2), init, max_iter=max_iter, tol=tol)
  return jax.device_get(params), int(iters), float(grad_norm)


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
                 tol: float = 1e-4) -> Dict[str, object]:
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
  # Largest λ first: each fit starts from the previous, smoother solution
  # (a continuation path), which cuts the iterations of the small-λ fits.
  l2_grid = sorted((float(v) for v in l2_grid), reverse=True)
  val_acc, init = {}, None
  if len(l2_grid) > 1:
    fit_idx, val_idx = stratified_holdout(ytr, holdout, seed)
    solutions, start = {}, None
    for l2 in l2_grid:
      start, _, _ = fit_softmax(xtr[fit_idx], ytr[fit_idx], num_classes, l2,
                                max_iter, tol, start)
      solutions[l2] = start
      val_acc[l2] = float(100 * np.mean(_predict(start, xtr[val_idx]) ==
                                        ytr[val_idx]))
    # Ties go to the larger λ (the simpler model).
    best = max(l2_grid, key=lambda l2: (val_acc[l2], l2))
    init = solutions[best]  # The refit on all data starts close to it.
  else:
    best = l2_grid[0]
  params, iters, grad_norm = fit_softmax(xtr, ytr, num_classes, best,
                                         max_iter, tol, init)
  top1 = float(100 * np.mean(_predict(params, xte) == np.asarray(test_labels)))
  return {'top1': top1, 'l2': best, 'val_top1': val_acc,
          'iterations': iters, 'grad_norm': grad_norm}
