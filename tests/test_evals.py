"""kNN, linear probe (against scipy on a known case) and the report."""

import json

import numpy as np
import pytest
from scipy import optimize

from ssl_pairs.evals import knn
from ssl_pairs.evals import linear_probe
from ssl_pairs.evals import run as eval_run


def blobs(n_per_class, centres, scale, seed):
  rng = np.random.default_rng(seed)
  x = np.concatenate([c + scale * rng.normal(size=(n_per_class, len(c)))
                      for c in centres]).astype(np.float32)
  y = np.repeat(np.arange(len(centres)), n_per_class)
  return x, y


def test_knn_votes_are_weighted_by_similarity():
  # One test point; its 3 neighbours: two of class 1 (cos 0.6) and one of
  # class 0 (cos 0.99). With τ = 0.07, e^{0.99/τ} > 2·e^{0.6/τ}: class 0 wins
  # at k = 3 although class 1 has the majority; at k = 1 class 0 trivially.
  train = np.array([[0.99, np.sqrt(1 - 0.99**2)], [0.6, 0.8], [0.6, -0.8],
                    [-1.0, 0.0]])
  labels = np.array([0, 1, 1, 2])
  preds = knn.knn_predict(train, labels, np.array([[1.0, 0.0]]), 3,
                          ks=(1, 3), temperature=0.07)
  assert preds[1][0] == 0 and preds[3][0] == 0
  # With a large τ the votes are nearly equal and the majority wins.
  preds = knn.knn_predict(train, labels, np.array([[1.0, 0.0]]), 3, ks=(3,),
                          temperature=100.0)
  assert preds[3][0] == 1


def test_knn_separates_clusters_and_caps_k():
  x, y = blobs(30, [[5, 0, 0], [0, 5, 0], [0, 0, 5]], 0.5, 0)
  xt, yt = blobs(10, [[5, 0, 0], [0, 5, 0], [0, 0, 5]], 0.5, 1)
  acc = knn.knn_accuracy(x, y, xt, yt, 3, ks=(20, 200))
  assert acc == {20: 100.0, 200: pytest.approx(100.0)}


def test_probe_matches_scipy_lbfgs_on_the_same_objective():
  x, y = blobs(40, [[1, 0], [0, 1], [-1, -1]], 1.0, 2)
  l2 = 0.05
  params, iters, grad_norm = linear_probe.fit_softmax(x, y, 3, l2,
                                                      max_iter=500, tol=1e-7)
  w, b = params['w'], params['b']

  def f(theta):
    W, B = theta[:6].reshape(2, 3), theta[6:]
    logits = x.astype(np.float64) @ W + B
    logits -= logits.max(1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean() + 0.5 * l2 * (W**2).sum()

  ref = optimize.minimize(f, np.zeros(9), method='L-BFGS-B',
                          options=dict(gtol=1e-10, ftol=1e-14)).x
  np.testing.assert_allclose(w, ref[:6].reshape(2, 3), atol=2e-4)
  np.testing.assert_allclose(b, ref[6:], atol=2e-4)
  assert grad_norm < 1e-5 and iters < 500


def test_probe_picks_a_regulariser_and_classifies_separable_data():
  x, y = blobs(50, [[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], 0.4, 3)
  xt, yt = blobs(20, [[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], 0.4, 4)
  r = linear_probe.linear_probe(x, y, xt, yt, 3)
  assert r['top1'] == 100.0
  assert r['l2'] in linear_probe.DEFAULT_L2_GRID
  assert len(r['val_top1']) == len(linear_probe.DEFAULT_L2_GRID)
  # Labels unrelated to the features: chance level, not better.
  rng = np.random.default_rng(5)
  r = linear_probe.linear_probe(x, rng.integers(0, 3, len(y)), xt,
                                rng.integers(0, 3, len(yt)), 3)
  assert r['top1'] < 60.0


def test_stratified_helpers_keep_class_proportions():
  labels = np.repeat(np.arange(4), [10, 20, 30, 40])
  a, b = eval_run.stratified_halves(labels, 0)
  assert len(np.intersect1d(a, b)) == 0 and len(a) + len(b) == 100
  np.testing.assert_array_equal(np.bincount(labels[a]), [5, 10, 15, 20])
  sub = eval_run.stratified_subset(labels, 50, 0)
  np.testing.assert_array_equal(np.bincount(labels[sub]), [5, 10, 15, 20])
  keep, held = linear_probe.stratified_holdout(labels, 0.1, 0)
  np.testing.assert_array_equal(np.bincount(labels[held]), [1, 2, 3, 4])
  assert len(keep) == 90


def test_report_merges_results_and_writes_markdown(tmp_path):
  eval_run.write_report(str(tmp_path), {'a': {'knn@20': 50.0, 'probe': 60.0}},
                        {'run': 'x', 'step': 5, 'train_seconds': 75.0})
  eval_run.write_report(str(tmp_path), {'b.npz': {'knn@20': 40.0}},
                        {'step': 7})
  report = json.loads((tmp_path / 'eval.json').read_text())
  assert set(report['results']) == {'a', 'b.npz'} and report['step'] == 7
  md = (tmp_path / 'eval.md').read_text()
  assert '| a | 50.00 | 60.00 |' in md and '1m15s' in md


def test_parse_datasets_marks_optional_ones():
  assert eval_run.parse_datasets('cifar10, stl10?,/d/x.npz') == [
      ('cifar10', False), ('stl10', True), ('/d/x.npz', False)]
  assert eval_run.result_key('/d/x.npz') == 'x.npz'
