"""Every method: trains, overfits where it must, and updates its state exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import load_config, synthetic_images
from ssl_pairs.losses import moco_infonce
from ssl_pairs import optim
from ssl_pairs import sharding
from ssl_pairs.images import normalize_images
from ssl_pairs.errors import UserError
from ssl_pairs.methods import METHODS, RunInfo, get_method
from ssl_pairs.methods.base import cosine_ema_momentum
from ssl_pairs.step import make_train_step
from ssl_pairs.train import create_state

CONFIG_OF = {'simclr': 'simclr_sp', 'mocov2': 'mocov2_sp', 'byol': 'byol_sp',
             'dino': 'dino_sp', 'vicreg': 'vicreg_sp', 'barlow': 'barlow_sp',
             'pirl': 'pirl_sp', 'supervised': 'supervised'}
RUN = RunInfo(total_steps=100, steps_per_epoch=10.0, num_images=80,
              num_classes=8)


def test_every_registered_method_has_configs():
  assert set(CONFIG_OF) == set(METHODS)


def fixed_batch(size=16, batch=8, seed=0):
  images, labels = synthetic_images(size=size, seed=seed)
  rng = np.random.default_rng(seed)
  idx = rng.choice(len(images), batch, replace=False)
  flipped = images[idx][:, :, ::-1]
  return {'view1': images[idx], 'view2': np.ascontiguousarray(flipped),
          'label': labels[idx].astype(np.int32),
          'index': idx.astype(np.int32)}


def setup(name, dtype='float32', **method_overrides):
  config = load_config(CONFIG_OF[name])
  config.model.dtype = dtype
  config.method.update(method_overrides)
  mesh = sharding.make_mesh(jax.devices()[:1])
  method = get_method(config, RUN)
  schedule = optim.learning_rate_schedule(config.optim, RUN.total_steps,
                                          RUN.steps_per_epoch,
                                          config.batch_size)
  tx = optim.make_optimizer(config.optim, schedule)
  state = create_state(method, tx, config, mesh)
  step = jax.jit(make_train_step(method, tx, schedule, 0))
  return config, method, state, step


def _train(name, steps, fixed_queue=False, **overrides):
  """Losses of ``steps`` steps on one fixed batch, checking every step."""
  _, _, state, step = setup(name, **overrides)
  before = jax.tree.map(np.asarray, state.params)
  queue = state.method_state.get('queue')
  batch = fixed_batch()
  losses = []
  for _ in range(steps):
    state, metrics = step(state, batch)
    if fixed_queue:
      state = state.replace(method_state=dict(state.method_state, queue=queue))
    losses.append(float(metrics['loss']))
    assert np.isfinite(losses[-1]), (name, losses)
    assert int(metrics['nonfinite']) == 0
    assert {'embed_std', 'embed_rank'} <= set(metrics)
  after = jax.tree.map(np.asarray, state.params)
  changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), before, after)
  # Every parameter of the backbone moves.
  assert all(jax.tree.leaves(changed['backbone'])), name
  return losses


@pytest.mark.parametrize('name', ['byol', 'dino'])
def test_trains_with_finite_loss_and_changing_parameters(name):
  _train(name, 3)


# Methods whose loss on one fixed batch must fall when trained on it: their
# loss is a fixed function of the parameters (SimCLR, VICReg, Barlow Twins,
# supervised), or PIRL's, whose memory-bank positives are the EMA of the very
# embeddings being trained. BYOL and DINO are only checked to train (above):
# their targets move with the EMA teacher (and DINO's centre and
# temperature), so the loss need not fall; their state updates are tested
# against the formulas below; DINO is also shown to learn on a batch below (its
# loss well under ln K, its centred teacher far from uniform). MoCo is tested with its queue held fixed (next
# test): on one repeated batch the queue fills with this batch's own keys, so
# every positive also sits among the negatives and the loss must rise, whatever
# the encoder does.
@pytest.mark.parametrize('name', ['simclr', 'vicreg', 'barlow', 'supervised',
                                  'pirl'])
def test_overfitting_one_batch_lowers_the_loss(name):
  losses = _train(name, 30)
  assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:3]), (name, losses)


def test_vicreg_logs_its_weighted_terms_which_sum_to_the_loss():
  config, _, state, step = setup('vicreg', sim_weight=2.0, var_weight=3.0,
                                 cov_weight=0.5)
  _, metrics = step(state, fixed_batch())
  m = {k: float(v) for k, v in metrics.items()}
  assert m['vicreg_var'] > 0 and m['vicreg_sim'] > 0 and m['vicreg_cov'] > 0
  assert m['loss'] == pytest.approx(
      2.0 * m['vicreg_sim'] + 3.0 * m['vicreg_var'] + 0.5 * m['vicreg_cov'],
      rel=1e-5)
  assert config.method.sim_weight == 2.0


@pytest.mark.parametrize('use_bn_in_head', [False, True])
def test_dino_learns_a_batch_its_targets_sharpen_below_uniform(use_bn_in_head):
  """The committed CPU-scale DINO runs once sat on the uniform plateau ln K;
  on one batch with the smoke head (K=64) the loss must fall well below ln K
  and the centred, sharpened teacher must be far from uniform (entropy)."""
  _, _, state, step = setup('dino', use_bn_in_head=use_bn_in_head)
  batch = fixed_batch(batch=16)
  k = 64
  rows = []
  for _ in range(60):
    state, metrics = step(state, batch)
    rows.append({m: float(metrics[m]) for m in ('loss', 'teacher_entropy')})
  assert all(np.isfinite(r['loss']) for r in rows)
  last = rows[-5:]
  assert max(r['loss'] for r in last) < np.log(k) - 1.0, rows[-1]
  assert max(r['teacher_entropy'] for r in last) < np.log(k) - 1.0, rows[-1]


def test_moco_overfits_one_batch_against_a_fixed_queue():
  # EMA 0.99, not the default 0.999: with 0.999 the keys' encoder barely
  # moves in 30 steps and the loss did not fall by 5 %.
  losses = _train('mocov2', 30, fixed_queue=True, queue_size=4096,
                  ema_base=0.99)
  # The keys' encoder follows the queries' (EMA), so the margin is smaller
  # than for the fixed-target losses above.
  assert np.mean(losses[-5:]) < 0.95 * np.mean(losses[:3]), losses
  assert losses[-1] < losses[0]


def _one_update(name, **overrides):
  """(method, old state, new state, extras) of one real step."""
  config, method, state, _ = setup(name, **overrides)
  batch = fixed_batch()
  inputs = dict(batch, view1=normalize_images(batch['view1']),
                view2=normalize_images(batch['view2']))
  _, (_, _, extras) = method.loss(state.params, state.batch_stats,
                                  state.method_state, inputs,
                                  jax.random.key(0), state.step)
  moved = jax.tree.map(lambda p: p + 0.01, state.params)
  new = state.replace(step=state.step + 1, params=moved)
  return config, method, state, method.after_update(state, new, extras), extras


def test_byol_target_is_the_cosine_ema_of_the_online_params():
  config, _, old, new, _ = _one_update('byol')
  tau = 1 - (1 - 0.99) * (np.cos(np.pi * 0 / 100) + 1) / 2
  assert tau == pytest.approx(float(cosine_ema_momentum(0.99, 0, 100)))
  expected = jax.tree.map(lambda t, p: tau * t + (1 - tau) * (p + 0.01),
                          old.method_state['target_params'], old.params)
  for a, b in zip(jax.tree.leaves(new.method_state['target_params']),
                  jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert config.method.ema_base == 0.99
  # Half-way the momentum is (1 + τ_base) / 2; at the end 1.
  assert float(cosine_ema_momentum(0.99, 50, 100)) == pytest.approx(0.995)
  assert float(cosine_ema_momentum(0.99, 100, 100)) == pytest.approx(1.0)


def test_moco_queue_takes_the_keys_at_the_pointer_and_wraps():
  _, _, old, new, extras = _one_update('mocov2')
  keys = np.asarray(extras['keys'])
  n = keys.shape[0]  # 2 × batch (symmetric).
  queue = np.asarray(new.method_state['queue'])
  np.testing.assert_array_equal(queue[:n], keys)
  np.testing.assert_array_equal(queue[n:],
                                np.asarray(old.method_state['queue'])[n:])
  assert int(new.method_state['queue_ptr']) == n
  np.testing.assert_allclose(np.linalg.norm(keys, axis=1), 1.0, rtol=1e-5)
  # The pointer wraps around the queue (64 entries, 16 keys per step).
  _, method, state, _ = setup('mocov2')
  state = state.replace(method_state=dict(state.method_state,
                                          queue_ptr=jnp.int32(48)))
  wrapped = method.after_update(state, state, {
      'keys': jnp.asarray(keys),
      'target_batch_stats': state.method_state['target_batch_stats']})
  assert int(wrapped.method_state['queue_ptr']) == 0
  np.testing.assert_array_equal(np.asarray(wrapped.method_state['queue'])[48:],
                                keys)


def test_moco_shuffle_bn_keys_use_per_group_statistics_of_the_shuffled_batch():
  """Queries: BN statistics per group of consecutive samples; keys: the same
  for a random permutation of the samples, put back in order afterwards —
  re-derived here with one plain apply per group and a scatter."""
  config, method, state, _ = setup('mocov2')
  assert config.method.shuffle_bn_groups == 2  # ':smoke'; batch 8.
  batch = fixed_batch()
  x = jnp.concatenate([normalize_images(batch['view1']),
                       normalize_images(batch['view2'])])
  rng = jax.random.key(3)
  loss, (stats, _, extras) = method.loss(
      state.params, state.batch_stats, state.method_state,
      dict(batch, view1=x[:8], view2=x[8:]), rng, state.step)

  def per_group(params, batch_stats, images):
    outs = [method.apply(params, batch_stats, images[g * 8:(g + 1) * 8])
            for g in range(2)]
    z = np.concatenate([np.asarray(o[0][1]) for o in outs])
    return z, [o[1] for o in outs]

  z, q_stats = per_group(state.params, state.batch_stats, x)
  perm = np.asarray(jax.random.permutation(rng, 16))
  target = state.method_state
  zk_shuffled, _ = per_group(target['target_params'],
                             target['target_batch_stats'], x[perm])
  zk = np.empty_like(zk_shuffled)
  zk[perm] = zk_shuffled
  k = zk / np.linalg.norm(zk, axis=1, keepdims=True)
  np.testing.assert_allclose(extras['keys'], k, rtol=1e-4, atol=1e-5)
  q = z / np.linalg.norm(z, axis=1, keepdims=True)
  t, queue = config.method.temperature, target['queue']
  expected = 0.5 * (moco_infonce(q[:8], k[8:], queue, t) +
                    moco_infonce(q[8:], k[:8], queue, t))
  np.testing.assert_allclose(loss, expected, rtol=1e-4)
  # New running statistics: the mean of the groups'.
  for a, b, c in zip(jax.tree.leaves(stats), jax.tree.leaves(q_stats[0]),
                     jax.tree.leaves(q_stats[1])):
    np.testing.assert_allclose(a, (np.asarray(b) + np.asarray(c)) / 2,
                               rtol=1e-5, atol=1e-6)
  # Global BN gives other keys: the grouping is not a no-op.
  (_, zk_global), _ = method.apply(target['target_params'],
                                   target['target_batch_stats'], x)
  assert not np.allclose(np.asarray(zk_global), zk, atol=1e-3)
  with pytest.raises(UserError, match='shuffle_bn_groups=3 must be a positive '
                     'divisor of batch_size=8'):
    setup('mocov2', shuffle_bn_groups=3)


def test_moco_queue_drift_compares_keys_with_the_newest_and_oldest_queue_keys():
  _, method, state, _ = setup('mocov2')  # Queue 64, 16 keys per step.
  rng = np.random.default_rng(0)
  queue = rng.normal(size=(64, 16)).astype(np.float32)
  queue /= np.linalg.norm(queue, axis=1, keepdims=True)
  batch = fixed_batch()
  inputs = dict(batch, view1=normalize_images(batch['view1']),
                view2=normalize_images(batch['view2']))
  for ptr in (0, 32):
    ms = dict(state.method_state, queue=jnp.asarray(queue),
              queue_ptr=jnp.int32(ptr))
    _, (_, metrics, extras) = method.loss(state.params, state.batch_stats, ms,
                                          inputs, jax.random.key(0), 0)
    k = np.asarray(extras['keys'])
    newest = queue[(ptr - 16) % 64:][:16]  # Written by the previous step.
    np.testing.assert_allclose(metrics['queue_cos_newest'],
                               np.mean(k @ newest.T), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics['queue_cos_oldest'],
                               np.mean(k @ queue[ptr:ptr + 16].T), rtol=1e-5,
                               atol=1e-6)


def test_dino_centre_ema_and_frozen_last_layer():
  config, _, old, new, extras = _one_update('dino')
  t = np.asarray(extras['teacher_logits'])
  np.testing.assert_allclose(new.method_state['center'],
                             0.9 * np.asarray(old.method_state['center']) +
                             0.1 * t.mean(0), rtol=1e-5, atol=1e-7)
  # Step 0 < 1 epoch (10 steps): the last layer keeps its value.
  np.testing.assert_array_equal(new.params['head']['last_layer'],
                                old.params['head']['last_layer'])
  assert not np.array_equal(new.params['backbone']['conv_init']['kernel'],
                            old.params['backbone']['conv_init']['kernel'])
  _, method, state, _ = setup('dino')
  late = state.replace(step=jnp.int32(10))
  moved = late.replace(params=jax.tree.map(lambda p: p + 0.01, late.params))
  out = method.after_update(late, moved, extras)
  np.testing.assert_allclose(out.params['head']['last_layer'],
                             np.asarray(late.params['head']['last_layer']) +
                             0.01, rtol=1e-6)
  grads = method.transform_grads(jax.tree.map(jnp.ones_like, state.params), 0)
  assert np.all(np.asarray(grads['head']['last_layer']) == 0)
  assert config.method.center_momentum == 0.9
  # Teacher temperature: 0.04 at step 0, 0.07 after the warm-up.
  assert float(method.teacher_temperature(0)) == pytest.approx(0.04)
  assert float(method.teacher_temperature(10_000)) == pytest.approx(0.07)


def test_pirl_memory_bank_rows_are_the_normalised_ema():
  _, _, old, new, extras = _one_update('pirl')
  bank, new_bank = np.asarray(old.method_state['bank']), np.asarray(
      new.method_state['bank'])
  idx = np.asarray(extras['index'])
  mixed = 0.5 * bank[idx] + 0.5 * np.asarray(extras['f'])
  np.testing.assert_allclose(new_bank[idx],
                             mixed / np.linalg.norm(mixed, axis=1,
                                                    keepdims=True), rtol=1e-5)
  others = np.setdiff1d(np.arange(len(bank)), idx)
  np.testing.assert_array_equal(new_bank[others], bank[others])


def test_pirl_jigsaw_moves_patches_and_the_permutation_follows_the_key():
  from ssl_pairs.methods.pirl import jigsaw_patches
  # Tile t of image i has the constant value 100·i + t, so every output patch
  # says which tile of which image it is.
  tile = np.arange(9).reshape(3, 3)
  x = np.stack([np.kron(tile + 100 * i, np.ones((2, 2)))
                for i in range(4)])[..., None].astype(np.float32)
  patches = np.asarray(jigsaw_patches(jnp.asarray(x), jax.random.key(3)))
  assert patches.shape == (4, 9, 2, 2, 1)
  assert np.all(patches == patches[:, :, :1, :1])  # Whole tiles, uncut.
  order = patches[:, :, 0, 0, 0] - 100 * np.arange(4)[:, None]
  for perm in order:  # Each image: a permutation of its own 9 tiles ...
    assert sorted(perm.tolist()) == list(range(9))
  # ... that really moves them, differs between images and follows the key.
  assert all(list(p) != list(range(9)) for p in order)
  assert len({tuple(p) for p in order}) == 4
  again = jigsaw_patches(jnp.asarray(x), jax.random.key(3))
  np.testing.assert_array_equal(np.asarray(again), patches)
  other = np.asarray(jigsaw_patches(jnp.asarray(x), jax.random.key(4)))
  assert not np.array_equal(other, patches)


@pytest.mark.parametrize('objective', ['infonce', 'nce'])
def test_pirl_contrast_equals_a_hand_computed_case(objective):
  """v = e1, positive = e1, negatives e2 and -e1, τ = 1: s+ = 1, s- = (0, -1).

  InfoNCE: -log(e / (e + 1 + e⁻¹)). NCE: the noise term is k·Z/N with Z/N
  the mean of e^{s-}: 2·(1 + e⁻¹)/2 = 1 + e⁻¹; the loss is
  -[log(e/(e + n)) + log(n/(1 + n)) + log(n/(e⁻¹ + n))].
  """
  import math  # pylint: disable=g-import-not-at-top
  config, method, _, _ = setup('pirl', objective=objective, temperature=1.0)
  del config
  v = jnp.asarray([[1.0, 0.0]])
  negatives = jnp.asarray([[0.0, 1.0], [-1.0, 0.0]])
  got = float(method._contrast(v, v, negatives))  # pylint: disable=protected-access
  e = math.e
  if objective == 'infonce':
    expected = -math.log(e / (e + 1 + 1 / e))
  else:
    n = 1 + 1 / e
    expected = -(math.log(e / (e + n)) + math.log(n / (1 + n)) +
                 math.log(n / (1 / e + n)))
  assert got == pytest.approx(expected, rel=1e-6)


def test_pirl_nce_objective_trains():
  _, _, state, step = setup('pirl', objective='nce')
  state, metrics = step(state, fixed_batch())
  assert np.isfinite(float(metrics['loss']))


def test_moco_queue_must_divide_by_the_keys_per_step():
  with pytest.raises(UserError, match='multiple of the 16 keys'):
    setup('mocov2', queue_size=100)


@pytest.mark.parametrize('name', ['simclr', 'dino'])
def test_vit_backbone_works_with_methods(name):
  config = load_config(CONFIG_OF[name], 'smoke,arch=vit_test')
  config.model.patch_size = 4
  config.optim.name = 'adamw'
  config.optim.base_lr = 1e-3
  mesh = sharding.make_mesh(jax.devices()[:1])
  method = get_method(config, RUN)
  schedule = optim.learning_rate_schedule(config.optim, 100, 10.0, 8)
  tx = optim.make_optimizer(config.optim, schedule)
  state = create_state(method, tx, config, mesh)
  step = jax.jit(make_train_step(method, tx, schedule, 0))
  batch = fixed_batch()
  if name == 'dino':  # Multi-crop: 8 px local views (2 × 2 patches of 4 px).
    batch['local'] = np.random.default_rng(0).integers(
        0, 256, (8, 2, 8, 8, 3), dtype=np.uint8)
  for _ in range(2):
    state, metrics = step(state, batch)
  assert np.isfinite(float(metrics['loss']))
  assert 'pos_embedding' in state.params['backbone']


@pytest.mark.parametrize('name', sorted(CONFIG_OF))
def test_checkpoint_of_each_method_restores_its_encoder_for_evaluation(
    name, tmp_path):
  """What evaluation restores is exactly the trained backbone, and it runs."""
  from ssl_pairs import checkpoint
  from ssl_pairs.evals.features import make_feature_fn
  from ssl_pairs.state import encoder_variables
  config, method, state, _ = setup(name)
  # Distinguish the params from a fresh init, so a restore that silently
  # re-initialised would fail.
  state = state.replace(params=jax.tree.map(lambda p: p + 0.5, state.params))
  ckpts = checkpoint.Checkpoints(str(tmp_path))
  ckpts.save(7, state, {'train_seconds': 1.0}, config.to_dict())
  ckpts.close()
  saved_config, step, variables, data = checkpoint.restore_encoder(
      str(tmp_path))
  assert step == 7 and data['train_seconds'] == 1.0
  assert saved_config['method']['name'] == name
  expected = encoder_variables(state)
  assert jax.tree.structure(variables) == jax.tree.structure(expected)
  for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(a, b)
  mesh = sharding.make_mesh(jax.devices()[:1])
  feats = make_feature_fn(method.backbone, mesh)(
      variables, fixed_batch()['view1'])
  assert feats.shape == (8, method.feature_dim)
  assert np.all(np.isfinite(np.asarray(feats)))


def test_dino_multicrop_trains_and_its_local_views_change_the_loss():
  config, method, state, step = setup('dino')
  batch = fixed_batch()
  rng = np.random.default_rng(1)
  local = rng.integers(0, 256, (8, 4, 6, 6, 3), dtype=np.uint8)
  inputs = dict(batch, view1=normalize_images(batch['view1']),
                view2=normalize_images(batch['view2']))
  args = (state.params, state.batch_stats, state.method_state)
  plain, (_, m_plain, _) = method.loss(*args, inputs, jax.random.key(0), 0)
  multi, (_, m_multi, extras) = method.loss(
      *args, dict(inputs, local=normalize_images(local)), jax.random.key(0), 0)
  assert np.isfinite(float(multi)) and float(multi) != float(plain)
  # The teacher (and so the centre update) sees only the two global views,
  # and the collapse monitor is over the same global embeddings.
  assert extras['teacher_logits'].shape[0] == 16
  assert float(m_multi['embed_rank']) == pytest.approx(
      float(m_plain['embed_rank']), rel=1e-5)
  for _ in range(2):
    state, metrics = step(state, dict(batch, local=local))
    assert np.isfinite(float(metrics['loss']))
    assert int(metrics['nonfinite']) == 0


def test_vit_position_embeddings_interpolate_to_other_sizes():
  from ssl_pairs.models.vit import interpolate_pos_embedding, vit
  pos = jax.random.normal(jax.random.key(0), (1, 1 + 16, 8))
  assert interpolate_pos_embedding(pos, 4, 4) is pos
  small = interpolate_pos_embedding(pos, 2, 2)
  assert small.shape == (1, 5, 8)
  np.testing.assert_array_equal(small[:, 0], pos[:, 0])  # Class token kept.
  # A constant grid stays constant under resizing.
  flat = jnp.concatenate([pos[:, :1], jnp.ones((1, 16, 8))], axis=1)
  np.testing.assert_allclose(interpolate_pos_embedding(flat, 3, 3)[:, 1:], 1.0,
                             rtol=1e-5)
  net = vit('vit_test', 4)
  params = net.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
  out = net.apply(params, jnp.ones((2, 8, 8, 3)))  # 2 × 2 patches.
  assert out.shape == (2, 32) and np.all(np.isfinite(np.asarray(out)))


def test_multicrop_is_refused_for_methods_that_do_not_use_it(tmp_path):
  from ssl_pairs.errors import UserError
  from ssl_pairs.train import validate_config
  config = load_config('simclr_sp')
  config.data.augment.local_crops = 2
  with pytest.raises(UserError, match='only used by DINO'):
    validate_config(config)


def test_simclr_bn_per_view_normalises_each_view_with_its_own_statistics():
  """bn_per_view = two forward passes (each view's own BatchNorm batch), as
  lightly and solo-learn do; the default is one pass over both views."""
  from ssl_pairs import losses
  batch = fixed_batch()
  inputs = {k: normalize_images(v) if k.startswith('view') else v
            for k, v in batch.items()}
  values = {}
  for per_view in (False, True):
    _, method, state, _ = setup('simclr', bn_per_view=per_view)
    loss, (stats, _, _) = method.loss(state.params, state.batch_stats, {},
                                      inputs, jax.random.key(0), 0)
    values[per_view] = float(loss)
  (_, z1), s1 = method.apply(state.params, state.batch_stats, inputs['view1'])
  (_, z2), s2 = method.apply(state.params, s1, inputs['view2'])
  expected = losses.nt_xent(jnp.concatenate([z1, z2]),
                            jnp.tile(jnp.arange(8), 2), 0.2)
  assert values[True] == pytest.approx(float(expected), rel=1e-6)
  assert values[True] != pytest.approx(values[False], rel=1e-4)
  # Running statistics see view 1, then view 2.
  for a, b in zip(jax.tree.leaves(stats), jax.tree.leaves(s2)):
    np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize('name', ['simclr', 'byol', 'vicreg'])
def test_bfloat16_compute_matches_float32_and_keeps_float32_state(name):
  """model.dtype=bfloat16 computes in bf16 but holds parameters, optimizer
  state and loss reductions in fp32: the first step's loss (same init, same
  batch) agrees with fp32 within bf16 precision, and so do the new params."""
  out = {}
  for dtype in ('float32', 'bfloat16'):
    _, _, state, step = setup(name, dtype)
    state, metrics = step(state, fixed_batch())
    for leaf in jax.tree.leaves((state.params, state.opt_state)):
      if jnp.issubdtype(leaf.dtype, jnp.floating):
        assert leaf.dtype == jnp.float32, (dtype, leaf.dtype)
    assert metrics['loss'].dtype == jnp.float32
    out[dtype] = (float(metrics['loss']), state.params)
  (l32, p32), (l16, p16) = out['float32'], out['bfloat16']
  assert np.isfinite(l16) and abs(l16 - l32) <= 0.02 * abs(l32) + 1e-2, (
      l32, l16)
  assert l16 != l32  # The bf16 path was really taken.
  # One update apart from the same init: parameters differ by bf16 noise only.
  for a, b in zip(jax.tree.leaves(p32), jax.tree.leaves(p16)):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=2e-2)
