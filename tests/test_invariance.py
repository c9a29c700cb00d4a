"""Top-K Representation Invariance Score against a loop-by-loop re-derivation."""

import math

import numpy as np
import pytest

from ssl_pairs.evals.invariance import topk_invariance_score


def _reference(f, set_ids, class_ids, k):
  """METHODS.md §1 spelled out with Python loops, one neuron at a time."""
  n, d = f.shape
  classes = sorted(set(class_ids.tolist()))
  p = min(100 * (1 - 1 / len(classes)), 95)
  per_class = []
  for c in classes:
    ratios = []
    for i in range(d):
      column = sorted(f[:, i].tolist())
      t_pos = column[min(math.floor(n * p / 100), n - 1)]
      t_neg = column[min(math.floor(n * (100 - p) / 100), n - 1)]
      g = sum(1 for v in f[:, i] if v >= t_pos) / n
      rates = []
      for s in sorted(set(set_ids.tolist())):
        idx = [j for j in range(n) if set_ids[j] == s]
        if len(idx) < 3 or class_ids[idx[0]] != c:
          continue
        pos = sum(1 for j in idx if f[j, i] > t_pos)
        neg = sum(1 for j in idx if f[j, i] < t_neg)
        if max(pos, neg) > 0:
          rates.append(max(pos, neg) / len(idx))
      if rates and g > 0:
        ratios.append(sum(rates) / len(rates) / g)
    if ratios:
      top = sorted(ratios, reverse=True)[:k]
      per_class.append(sum(top) / len(top))
  return sum(per_class) / len(per_class) * (100 - p)


def _sets(num_classes=4, sets_per_class=5, size=4, d=30, seed=0):
  rng = np.random.default_rng(seed)
  set_ids = np.repeat(np.arange(num_classes * sets_per_class), size)
  class_ids = set_ids // sets_per_class
  f = rng.standard_normal((len(set_ids), d))
  return f, set_ids, class_ids


@pytest.mark.parametrize('seed', [0, 1])
def test_matches_the_loop_reference(seed):
  f, set_ids, class_ids = _sets(seed=seed)
  f[::7, 3] = 0.0  # Ties at the thresholds.
  scores = topk_invariance_score(f, set_ids, class_ids, ks=(5, 10))
  for k in (5, 10):
    assert scores[k] == pytest.approx(_reference(f, set_ids, class_ids, k),
                                      rel=1e-12)


def test_invariant_features_score_higher_and_neuron_order_does_not_matter():
  f, set_ids, class_ids = _sets()
  rng = np.random.default_rng(3)
  per_set = rng.standard_normal((set_ids.max() + 1, f.shape[1]))
  invariant = per_set[set_ids] + 0.01 * f  # Each set nearly constant.
  assert (topk_invariance_score(invariant, set_ids, class_ids)[10] >
          2 * topk_invariance_score(f, set_ids, class_ids)[10])
  perm = rng.permutation(f.shape[1])
  assert topk_invariance_score(f[:, perm], set_ids, class_ids) == \
      pytest.approx(topk_invariance_score(f, set_ids, class_ids))


def test_sets_smaller_than_three_are_skipped():
  f, set_ids, class_ids = _sets(size=3)
  small = set_ids.copy()
  small[:2] = 1000  # A 2-image set (and set 0 shrinks to one image).
  singletons = set_ids.copy()
  singletons[:3] = [2000, 2001, 2002]
  assert topk_invariance_score(f, small, class_ids) == pytest.approx(
      topk_invariance_score(f, singletons, class_ids))
  assert math.isnan(topk_invariance_score(f, np.arange(len(f)),
                                          class_ids)[10])


def test_viewpoint_sets_are_windows_inside_shots():
  from ssl_pairs.evals.invariance import viewpoint_sets
  shots = np.array([0] * 7 + [1] * 5)
  set_ids, class_ids = viewpoint_sets(shots, window=3)
  np.testing.assert_array_equal(set_ids, [0, 0, 0, 1, 1, 1, 2, 3, 3, 3, 4, 4])
  np.testing.assert_array_equal(class_ids, shots)
