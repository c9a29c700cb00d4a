"""MoCo, BYOL, VICReg, Barlow Twins and DINO losses against numpy (METHODS.md §2)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssl_pairs import losses

RTOL = 1e-5


def norm(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def rand(*shape, seed=0):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def np_logsumexp(x, axis):
  m = x.max(axis=axis, keepdims=True)
  return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def test_moco_single_positive_is_cross_entropy_at_index_0():
  q, k, queue = norm(rand(6, 8)), norm(rand(6, 8, seed=1)), norm(rand(20, 8,
                                                                      seed=2))
  logits = np.concatenate([np.sum(q * k, 1, keepdims=True), q @ queue.T],
                          1) / 0.2
  expected = np.mean(np_logsumexp(logits, 1) - logits[:, 0])
  np.testing.assert_allclose(losses.moco_infonce(q, k, queue, 0.2), expected,
                             rtol=RTOL)
  # [N, 1, D] keys give the same loss.
  np.testing.assert_allclose(losses.moco_infonce(q, k[:, None], queue, 0.2),
                             expected, rtol=RTOL)


def test_moco_multi_positive_with_mask():
  q, k = norm(rand(4, 8)), norm(rand(4, 3, 8, seed=1))
  queue = norm(rand(10, 8, seed=2))
  mask = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 0, 1]], bool)
  expected = []
  for i in range(4):
    pos = np.exp(np.sum(q[i] * k[i][mask[i]], -1) / 0.1).sum()
    neg = np.exp(q[i] @ queue.T / 0.1).sum()
    expected.append(-np.log(pos / (pos + neg)))
  np.testing.assert_allclose(losses.moco_infonce(q, k, queue, 0.1, mask),
                             np.mean(expected), rtol=RTOL)


def test_byol_loss_and_stop_gradient():
  p, z = rand(5, 7), rand(5, 7, seed=1)
  expected = 2 - 2 * np.mean(np.sum(norm(p) * norm(z), 1))
  np.testing.assert_allclose(losses.byol_loss(p, z), expected, rtol=RTOL)
  gz = jax.grad(lambda z: losses.byol_loss(jnp.asarray(p), z))(jnp.asarray(z))
  assert np.all(np.asarray(gz) == 0)


def np_vicreg(z1, z2, s=25.0, v=25.0, c=1.0):
  sim, var, cov = np_vicreg_terms(z1, z2)
  return s * sim + v * var + c * cov


def np_vicreg_terms(z1, z2):
  n, d = z1.shape
  sim = np.mean((z1 - z2)**2)
  var = cov = 0.0
  for z in (z1, z2):
    z = z.astype(np.float64)
    var += np.mean(np.maximum(0, 1 - np.sqrt(z.var(0, ddof=1) + 1e-4)))
    zc = z - z.mean(0)
    cm = zc.T @ zc / (n - 1)
    cov += (np.sum(cm**2) - np.sum(np.diag(cm)**2)) / d
  return sim, var, cov


def test_vicreg_matches_the_equation():
  z1, z2 = rand(16, 6) * 0.3, rand(16, 6, seed=1) * 0.3  # Variance term active.
  np.testing.assert_allclose(losses.vicreg_loss(z1, z2), np_vicreg(z1, z2),
                             rtol=RTOL)
  np.testing.assert_allclose(losses.vicreg_loss(z1, z2, 1.0, 2.0, 3.0),
                             np_vicreg(z1, z2, 1.0, 2.0, 3.0), rtol=RTOL)
  # The logged terms are the equation's, each one on its own.
  np.testing.assert_allclose(losses.vicreg_terms(z1, z2),
                             np_vicreg_terms(z1, z2), rtol=RTOL)


def test_barlow_twins_matches_numpy():
  z1, z2 = rand(32, 5), rand(32, 5, seed=1)
  std = lambda z: (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5)
  c = std(z1.astype(np.float64)).T @ std(z2.astype(np.float64)) / 32
  off = np.sum(c**2) - np.sum(np.diag(c)**2)
  expected = np.sum((1 - np.diag(c))**2) + 0.0051 * off
  np.testing.assert_allclose(losses.barlow_twins_loss(z1, z2), expected,
                             rtol=RTOL)
  np.testing.assert_allclose(losses.barlow_twins_loss(z1, z2, 0.1, 0.5),
                             0.5 * (np.sum((1 - np.diag(c))**2) + 0.1 * off),
                             rtol=RTOL)


def np_dino(s, t, center, ts, tt, n):
  v = s.shape[0] // n
  pt = np.exp((t - center) / tt)
  pt = (pt / pt.sum(-1, keepdims=True)).reshape(2, n, -1)
  ls = s / ts
  ls = (ls - np_logsumexp(ls, -1)[..., None]).reshape(v, n, -1)
  terms = [np.mean(-np.sum(pt[i] * ls[j], -1)) for i in range(2)
           for j in range(v) if i != j]
  return np.mean(terms)


@pytest.mark.parametrize('views', [2, 4])
def test_dino_loss_matches_numpy(views):
  n, k = 3, 11
  s, t, c = rand(views * n, k), rand(2 * n, k, seed=1), rand(k, seed=2)
  np.testing.assert_allclose(losses.dino_loss(s, t, c, 0.1, 0.04),
                             np_dino(s, t, c, 0.1, 0.04, n), rtol=RTOL)


def test_dino_center_is_an_ema_of_the_batch_mean():
  c, t = rand(7), rand(10, 7, seed=1)
  np.testing.assert_allclose(losses.dino_center(c, t, 0.9),
                             0.9 * c + 0.1 * t.mean(0), rtol=RTOL)


@pytest.mark.parametrize('fn', [
    lambda a, b: losses.vicreg_loss(a, b),
    lambda a, b: losses.barlow_twins_loss(a, b),
    lambda a, b: losses.byol_loss(a, b),
])
def test_permuting_the_batch_leaves_the_loss_unchanged(fn):
  z1, z2 = rand(12, 4), rand(12, 4, seed=1)
  perm = np.random.default_rng(3).permutation(12)
  np.testing.assert_allclose(fn(z1[perm], z2[perm]), fn(z1, z2), rtol=1e-5)
