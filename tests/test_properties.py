"""Properties the study relies on, each one a bug we once put in and no test
caught (mutation run, docs/development.md "Mutation check"): two views of one
image differ; the crop scale setting reaches the crop sampler; colour jitter
applies its ops in a seeded random order; kNN and the linear probe are
invariant to what their protocol normalises away, and the probe's λ is the
best on its held-out split; a step with a finite loss but a NaN gradient
leaves the state alone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from conftest import synthetic_images
from ssl_pairs.data import augment
from ssl_pairs.data import device_augment as da
from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data import pipeline
from ssl_pairs.data import sources
from ssl_pairs.evals import knn, linear_probe


# ---------------------------------------------------------------- views


def _augmented_views(synthetic_npz, on='host'):
  src = sources.load_split(synthetic_npz, 'train', '', 16)
  cfg = common.data_config('augmented')
  cfg.image_size = 16
  cfg.augment.preset = 'strong'
  cfg.pair_transform = 'none'  # Plain two-view SimCLR: only the views differ.
  cfg.augment_on = on
  ps = pairs_lib.build_pair_set(cfg, src)
  return cfg, pipeline.train_batches(src, ps, cfg, 16, seed=0)[0]


def test_two_host_views_of_one_image_differ(synthetic_npz):
  _, b = _augmented_views(synthetic_npz)
  np.testing.assert_array_equal(b['index'], b['partner'])
  for v1, v2 in zip(b['view1'], b['view2']):
    assert not np.array_equal(v1, v2)


def test_two_device_views_of_one_image_differ(synthetic_npz):
  cfg, raw = _augmented_views(synthetic_npz, on='device')
  np.testing.assert_array_equal(raw['view1'], raw['view2'])  # Raw: equal.
  out = da.DeviceAugmenter(cfg, seed=0)(jax.tree.map(jnp.asarray, raw))
  v1, v2 = np.asarray(out['view1']), np.asarray(out['view2'])
  for a, b in zip(v1, v2):
    assert not np.array_equal(a, b)


@pytest.mark.parametrize('preset', ['strong', 'asymmetric', 'weak_rrc'])
def test_crop_min_scale_reaches_the_crop_sampler(preset, monkeypatch):
  seen = []
  real = augment.random_resized_crop_box

  def spy(rng, height, width, scale, ratio):
    seen.append(tuple(scale))
    return real(rng, height, width, scale, ratio)

  monkeypatch.setattr(augment, 'random_resized_crop_box', spy)
  cfg = common.data_config('augmented').augment
  cfg.preset, cfg.crop_min_scale = preset, 0.55
  specs = augment.view_specs(cfg, 16)
  image = synthetic_images(num_classes=1, per_class=1)[0][0]
  for spec in specs:
    augment.apply_view(image, np.random.default_rng(0), spec, 16)
  assert seen == [(0.55, 1.0), (0.55, 1.0)]


def test_colour_jitter_order_is_drawn_from_the_seed():
  """Brightness and contrast do not commute (clipping, the mean): the result
  must be the ops applied in the order rng.permutation(4) draws, which must
  differ across seeds — torchvision's ColorJitter."""
  x = np.random.default_rng(1).uniform(0, 1, (8, 8, 3)).astype(np.float32)
  b, c = 0.6, 0.6

  def by_hand(seed):
    rng = np.random.default_rng(seed)
    y = x.astype(np.float64)
    order = [int(op) for op in rng.permutation(4) if op in (0, 1)]
    for op in order:
      if op == 0:
        y = np.clip(y * rng.uniform(1 - b, 1 + b), 0, 1)
      else:
        gray = (0.299 * y[..., 0] + 0.587 * y[..., 1] + 0.114 * y[..., 2])
        f = rng.uniform(1 - c, 1 + c)
        y = np.clip(f * y + (1 - f) * gray.mean(), 0, 1)
    return y, order

  orders = set()
  for seed in range(12):
    expected, order = by_hand(seed)
    got = augment.color_jitter(x, np.random.default_rng(seed), (b, c, 0, 0))
    np.testing.assert_allclose(got, expected, atol=2e-6)
    orders.add(tuple(order))
  assert orders == {(0, 1), (1, 0)}


# ---------------------------------------------------------- evaluations


def _clustered(n_per=30, classes=4, dim=12, seed=0, noise=0.9):
  rng = np.random.default_rng(seed)
  centres = rng.normal(0, 1, (classes, dim))
  y = np.repeat(np.arange(classes), n_per)
  x = centres[y] + noise * rng.normal(0, 1, (len(y), dim))
  return x.astype(np.float32), y


def test_knn_depends_only_on_directions_and_equals_brute_force():
  xtr, ytr = _clustered()
  xte, _ = _clustered(n_per=10, seed=1)
  preds = knn.knn_predict(xtr, ytr, xte, 4, ks=(5, 20), temperature=0.1)
  # Rows rescaled by arbitrary positive factors: the same predictions.
  rng = np.random.default_rng(2)
  scaled = knn.knn_predict(xtr * rng.uniform(0.1, 10, (len(xtr), 1)), ytr,
                           xte * rng.uniform(0.1, 10, (len(xte), 1)), 4,
                           ks=(5, 20), temperature=0.1)
  for k in (5, 20):
    np.testing.assert_array_equal(preds[k], scaled[k])
  # Brute force: cosine similarity, k nearest vote with exp(sim / τ).
  a = xtr / np.linalg.norm(xtr, axis=1, keepdims=True)
  q = xte / np.linalg.norm(xte, axis=1, keepdims=True)
  sim = q @ a.T
  for k in (5, 20):
    top = np.argsort(-sim, axis=1)[:, :k]
    votes = np.zeros((len(q), 4))
    for i in range(len(q)):
      for j in top[i]:
        votes[i, ytr[j]] += np.exp(sim[i, j] / 0.1)
    np.testing.assert_array_equal(preds[k], votes.argmax(1))


def test_probe_is_invariant_to_feature_scale_and_shift():
  xtr, ytr = _clustered()
  xte, yte = _clustered(n_per=10, seed=1)
  base = linear_probe.linear_probe(xtr, ytr, xte, yte, 4, seed=0)
  rng = np.random.default_rng(3)
  scale = rng.uniform(0.01, 100, xtr.shape[1]).astype(np.float32)
  shift = rng.normal(0, 50, xtr.shape[1]).astype(np.float32)
  moved = linear_probe.linear_probe(xtr * scale + shift, ytr,
                                    xte * scale + shift, yte, 4, seed=0)
  assert moved['l2'] == base['l2']
  assert moved['top1'] == pytest.approx(base['top1'], abs=1e-9)
  assert moved['val_top1'] == pytest.approx(base['val_top1'])


def test_probe_picks_the_lambda_best_on_its_held_out_split():
  xtr, ytr = _clustered(n_per=60, dim=40, seed=4, noise=3.0)
  xte, yte = _clustered(n_per=10, dim=40, seed=5, noise=3.0)
  grid = (1e-4, 1e-2, 1.0, 30.0)
  r = linear_probe.linear_probe(xtr, ytr, xte, yte, 4, l2_grid=grid, seed=0)
  assert set(r['val_top1']) == set(grid)
  # Recomputed: fit each λ on the same held-out split, score it.
  mean, std = xtr.mean(0), xtr.std(0) + 1e-6
  z = (xtr - mean) / std
  fit, val = linear_probe.stratified_holdout(ytr, 0.1, 0)
  acc = {}
  for l2 in grid:
    params, _, _ = linear_probe.fit_softmax(z[fit], ytr[fit], 4, l2)
    acc[l2] = 100 * np.mean(np.argmax(z[val] @ params['w'] + params['b'], 1)
                            == ytr[val])
  assert r['val_top1'] == pytest.approx(acc, abs=1e-6)
  assert r['l2'] == max(grid, key=lambda l2: (acc[l2], l2))
  assert len(set(acc.values())) > 1  # The grid matters on this data.


# ------------------------------------------------------------------ step


def test_a_finite_loss_with_a_nan_gradient_keeps_the_state():
  from test_methods import fixed_batch, setup  # pylint: disable=g-import-not-at-top
  _, method, state, _ = setup('simclr')
  real_loss = method.loss

  def loss_with_nan_gradient(params, *args):
    loss, aux = real_loss(params, *args)
    # sqrt'(0) = inf, times 0: the loss stays finite, its gradient is NaN.
    leaf = jax.tree.leaves(params)[0]
    return loss + 0.0 * jnp.sqrt(jnp.sum(leaf * 0.0)), aux

  method.loss = loss_with_nan_gradient
  from ssl_pairs import optim  # pylint: disable=g-import-not-at-top
  from ssl_pairs.step import make_train_step  # pylint: disable=g-import-not-at-top
  import test_methods  # pylint: disable=g-import-not-at-top
  schedule = optim.learning_rate_schedule(
      method.config.optim, test_methods.RUN.total_steps,
      test_methods.RUN.steps_per_epoch, method.config.batch_size)
  tx = optim.make_optimizer(method.config.optim, schedule)
  step = jax.jit(make_train_step(method, tx, schedule, 0))
  new, metrics = step(state, fixed_batch())
  assert np.isfinite(float(metrics['loss']))
  assert int(metrics['nonfinite']) == 1
  for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_the_step_key_follows_the_step_counter():
  """fold_in(key(seed), step): PIRL's sampled negatives and jigsaw differ
  from one step to the next (so the loss of the same params does), and the
  same step gives the same numbers."""
  from test_methods import fixed_batch, setup  # pylint: disable=g-import-not-at-top
  _, _, state, step = setup('pirl')
  batch = fixed_batch()
  loss_at = lambda s: float(step(state.replace(step=jnp.int32(s)), batch)[1][
      'loss'])
  assert loss_at(3) == loss_at(3)
  assert loss_at(3) != loss_at(4)


def test_device_colour_jitter_follows_the_keys_permutation():
  """The device jitter applies its four ops in the order
  jax.random.permutation(order key, 4) draws, which differs across keys."""
  x = jnp.asarray(np.random.default_rng(1).uniform(0, 1, (8, 8, 3)),
                  jnp.float32)
  strength = (0.6, 0.6, 0.0, 0.0)
  orders = set()
  for seed in range(10):
    key = jax.random.key(seed)
    k_order, k_factor = jax.random.split(key)
    order = [int(o) for o in jax.random.permutation(k_order, 4)]
    u = jax.random.uniform(k_factor, (4,))
    factors = [0.4 + u[0] * 1.2, 0.4 + u[1] * 1.2]
    y = x
    for op in order:
      if op in (0, 1):
        y = da.adjust(y, op, factors[op])
    np.testing.assert_allclose(np.asarray(da.color_jitter(x, key, strength)),
                               np.asarray(y), atol=1e-6)
    orders.add(tuple(o for o in order if o in (0, 1)))
  assert orders == {(0, 1), (1, 0)}


def test_another_seed_shuffles_the_pairs_in_another_order(synthetic_npz):
  src = sources.load_split(synthetic_npz, 'train', '', 16)
  cfg = common.data_config('semantic')
  cfg.image_size = 16
  cfg.augment.preset = 'none'
  ps = pairs_lib.build_pair_set(cfg, src)
  first = [np.concatenate([pipeline.train_batches(src, ps, cfg, 8, seed)[s][
      'index'] for s in range(10)]) for seed in (0, 1)]
  assert sorted(first[0]) == sorted(first[1])  # One epoch each: all pairs.
  assert not np.array_equal(first[0], first[1])
