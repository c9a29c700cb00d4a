"""Blocked exact kNN against a brute-force numpy reference."""

import numpy as np
import pytest

from ssl_pairs.errors import UserError
from ssl_pairs.mining.neighbours import nearest_neighbours


def brute_force(x, y, k, metric, exclude_self):
  if metric == 'l2':
    d = ((x[:, None, :].astype(np.float64) - y[None]) ** 2).sum(-1)
  else:
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    yn = y / np.linalg.norm(y, axis=1, keepdims=True)
    d = -(xn.astype(np.float64) @ yn.T)
  if exclude_self:
    np.fill_diagonal(d, np.inf)
  idx = np.argsort(d, axis=1, kind='stable')[:, :k]
  vals = np.take_along_axis(d, idx, axis=1)
  return idx, (vals if metric == 'l2' else -vals)


def _backend(name):
  if name == 'faiss':
    pytest.importorskip('faiss')
  return name


@pytest.mark.parametrize('backend', ['jax', 'faiss'])
@pytest.mark.parametrize('metric', ['l2', 'cosine'])
@pytest.mark.parametrize('include_self', [False, True])
def test_matches_brute_force_with_blocks_that_do_not_divide_n(metric,
                                                               include_self,
                                                               backend):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(203, 16)).astype(np.float32)
  idx, vals = nearest_neighbours(x, 7, metric, include_self, query_block=64,
                                 key_block=50, backend=_backend(backend))
  ref_idx, ref_vals = brute_force(x, x, 7, metric, not include_self)
  np.testing.assert_array_equal(idx, ref_idx)
  np.testing.assert_allclose(vals, ref_vals, rtol=1e-4, atol=1e-4)
  if include_self:
    np.testing.assert_array_equal(idx[:, 0], np.arange(len(x)))
  else:
    assert not np.any(idx == np.arange(len(x))[:, None])


@pytest.mark.parametrize('backend', ['jax', 'faiss'])
def test_separate_keys_and_duplicate_points(backend):
  rng = np.random.default_rng(1)
  keys = rng.normal(size=(120, 8)).astype(np.float32)
  queries = keys[[5, 17, 99]] + 1e-3  # Nearly on top of three keys.
  idx, vals = nearest_neighbours(queries, 3, keys=keys, key_block=32,
                                 backend=_backend(backend))
  np.testing.assert_array_equal(idx[:, 0], [5, 17, 99])
  assert np.all(vals[:, 0] < 1e-4) and np.all(np.diff(vals, axis=1) >= 0)
  ref_idx, _ = brute_force(queries, keys, 3, 'l2', False)
  np.testing.assert_array_equal(idx, ref_idx)


def test_bad_arguments_are_one_sentence_errors():
  x = np.zeros((4, 3), np.float32)
  with pytest.raises(UserError, match='only 3 candidates'):
    nearest_neighbours(x, 4)
  with pytest.raises(UserError, match="Unknown neighbour metric 'dot'"):
    nearest_neighbours(x, 1, metric='dot')
  with pytest.raises(UserError, match='2-D array'):
    nearest_neighbours(np.zeros(5), 1)
  with pytest.raises(UserError, match="Unknown neighbour backend 'annoy'"):
    nearest_neighbours(np.ones((4, 3), np.float32), 1, backend='annoy')


def test_exact_duplicates_never_list_the_query_itself():
  """With copies of a point, excluding self drops the query's own id even
  when the index returns a copy before it (both backends)."""
  x = np.repeat(np.random.default_rng(2).normal(size=(10, 4)), 3, axis=0)
  for backend in ('jax', 'faiss') if _faiss_ok() else ('jax',):
    idx, vals = nearest_neighbours(x.astype(np.float32), 2, backend=backend)
    assert not np.any(idx == np.arange(len(x))[:, None]), backend
    assert np.all(idx // 3 == (np.arange(len(x)) // 3)[:, None]), backend
    assert np.all(vals < 1e-5)


def _faiss_ok():
  try:
    import faiss  # pylint: disable=g-import-not-at-top,unused-import
    return True
  except ImportError:
    return False
