"""nt_xent against a numpy re-derivation and its defining properties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssl_pairs import losses


def numpy_nt_xent(z, ids, tau, valid=None):
  """Literal METHODS.md §2 formula, in float64 loops."""
  z = np.asarray(z, np.float64)
  z = z / np.linalg.norm(z, axis=1, keepdims=True)
  m = len(z)
  valid = np.ones(m, bool) if valid is None else np.asarray(valid)
  total, count = 0.0, 0
  for a in range(m):
    if not valid[a]:
      continue
    pos = [b for b in range(m) if b != a and valid[b] and ids[b] == ids[a]]
    neg = [b for b in range(m) if valid[b] and ids[b] != ids[a]]
    if not pos:
      continue
    e = lambda b: np.exp(z[a] @ z[b] / tau)
    sp = sum(e(b) for b in pos)
    sn = sum(e(b) for b in neg)
    total += -np.log(sp / (sp + sn))
    count += 1
  return total / count if count else 0.0


def classic_simclr(z1, z2, tau):
  """The SimCLR paper's two-view NT-Xent as cross-entropy over 2N−1 logits."""
  z = np.concatenate([z1, z2]).astype(np.float64)
  z /= np.linalg.norm(z, axis=1, keepdims=True)
  n = len(z1)
  s = z @ z.T / tau
  np.fill_diagonal(s, -np.inf)
  target = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
  logp = s - np.log(np.exp(s).sum(1, keepdims=True))
  return -logp[np.arange(2 * n), target].mean()


@pytest.mark.parametrize('tau', [0.1, 0.5])
def test_matches_numpy_with_multiple_positives(tau):
  rng = np.random.default_rng(0)
  z = rng.normal(size=(12, 5)).astype(np.float32)
  ids = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4])  # id 3: no positive.
  got = losses.nt_xent(jnp.asarray(z), jnp.asarray(ids), tau)
  np.testing.assert_allclose(got, numpy_nt_xent(z, ids, tau), rtol=1e-5)


def test_one_positive_equals_classic_two_view_form():
  rng = np.random.default_rng(1)
  z1, z2 = rng.normal(size=(2, 6, 8)).astype(np.float32)
  ids = np.concatenate([np.arange(6), np.arange(6)])
  got = losses.nt_xent(jnp.asarray(np.concatenate([z1, z2])), ids, 0.2)
  np.testing.assert_allclose(got, classic_simclr(z1, z2, 0.2), rtol=1e-5)
  mean_log = losses.nt_xent(jnp.asarray(np.concatenate([z1, z2])), ids, 0.2,
                            positive_form='mean_log')
  np.testing.assert_allclose(mean_log, got, rtol=1e-5)


def test_permuting_the_batch_leaves_the_loss_unchanged():
  rng = np.random.default_rng(2)
  z = rng.normal(size=(10, 4)).astype(np.float32)
  ids = np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
  perm = rng.permutation(10)
  a = losses.nt_xent(jnp.asarray(z), ids, 0.3)
  b = losses.nt_xent(jnp.asarray(z[perm]), ids[perm], 0.3)
  np.testing.assert_allclose(a, b, rtol=1e-6)


def test_masked_entries_do_not_change_the_loss():
  rng = np.random.default_rng(3)
  z = rng.normal(size=(8, 4)).astype(np.float32)
  ids = np.array([0, 1, 2, 3, 0, 1, 2, 3])
  pad = rng.normal(size=(3, 4)).astype(np.float32) * 100
  zp = np.concatenate([z, pad])
  idsp = np.concatenate([ids, [0, 1, 9]])  # Padding even shares real ids.
  valid = np.arange(11) < 8
  a = losses.nt_xent(jnp.asarray(z), ids, 0.2)
  b = losses.nt_xent(jnp.asarray(zp), idsp, 0.2, valid=valid)
  np.testing.assert_allclose(a, b, rtol=1e-6)
  np.testing.assert_allclose(b, numpy_nt_xent(zp, idsp, 0.2, valid), rtol=1e-5)


def test_no_positive_gives_zero_and_finite_gradients():
  z = jnp.asarray(np.random.default_rng(4).normal(size=(5, 3)), jnp.float32)
  ids = jnp.arange(5)
  loss, grad = jax.value_and_grad(lambda z: losses.nt_xent(z, ids, 0.1))(z)
  assert float(loss) == 0.0
  assert np.all(np.isfinite(grad)) and np.all(grad == 0)


def test_mean_log_form_differs_with_several_positives():
  rng = np.random.default_rng(5)
  z = rng.normal(size=(6, 4)).astype(np.float32)
  ids = np.array([0, 0, 0, 1, 1, 1])
  zn = z / np.linalg.norm(z, axis=1, keepdims=True)
  s = zn @ zn.T / 0.5
  expected = []
  for a in range(6):
    others = [b for b in range(6) if b != a]
    log_den = np.log(np.exp(s[a, others]).sum())
    pos = [b for b in others if ids[b] == ids[a]]
    expected.append(np.mean([log_den - s[a, b] for b in pos]))
  got = losses.nt_xent(jnp.asarray(z), ids, 0.5, positive_form='mean_log')
  np.testing.assert_allclose(got, np.mean(expected), rtol=1e-5)


def test_bf16_inputs_are_reduced_in_float32():
  rng = np.random.default_rng(6)
  z = rng.normal(size=(16, 8)).astype(np.float32)
  ids = np.concatenate([np.arange(8), np.arange(8)])
  a = losses.nt_xent(jnp.asarray(z, jnp.bfloat16), ids, 0.2)
  assert a.dtype == jnp.float32
  np.testing.assert_allclose(a, numpy_nt_xent(z, ids, 0.2), rtol=2e-2)
