"""Each method's loss is its documented loss of its own outputs.

The losses themselves are checked against reference code elsewhere
(test_losses*.py); here the question is the wiring: which outputs are paired,
which temperature goes where, which branch is the stopped target. For every
method the test runs the method's networks on the batch itself and recomputes
the loss from the docstring's formula with ``ssl_pairs.losses``; a method that
pairs a view with itself, swaps two temperatures or predicts the wrong target
gives another number. Teacher/target parameters are moved away from the
online ones first, so that "target" and "online" outputs differ.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssl_pairs import losses
from ssl_pairs.images import normalize_images
from ssl_pairs.losses import l2_normalize
from test_methods import fixed_batch, setup


def _inputs(batch_size=8):
  batch = fixed_batch(batch=batch_size)
  return dict(batch, view1=normalize_images(batch['view1']),
              view2=normalize_images(batch['view2']))


def _moved_target(state, scale=0.05):
  """The state with its target/teacher params moved off the online ones."""
  ms = dict(state.method_state)
  leaves, tree = jax.tree.flatten(ms['target_params'])
  keys = jax.random.split(jax.random.key(7), len(leaves))
  ms['target_params'] = jax.tree.unflatten(tree, [
      x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])
  return state.replace(method_state=ms)


def _method_loss(method, state, inputs, step=0):
  loss, _ = method.loss(state.params, state.batch_stats, state.method_state,
                        inputs, jax.random.key(0), step)
  return float(loss)


def _concat(inputs):
  return jnp.concatenate([inputs['view1'], inputs['view2']])


def test_simclr_contrasts_each_view_with_the_other_view_of_its_pair():
  config, method, state, _ = setup('simclr')
  inputs = _inputs()
  (_, z), _ = method.apply(state.params, state.batch_stats, _concat(inputs))
  b = inputs['view1'].shape[0]
  expected = losses.nt_xent(z, jnp.concatenate([jnp.arange(b)] * 2),
                            config.method.temperature)
  assert _method_loss(method, state, inputs) == pytest.approx(
      float(expected), rel=1e-5)


def test_byol_predicts_the_other_views_stopped_target():
  _, method, state, _ = setup('byol')
  state = _moved_target(state)
  inputs = _inputs()
  x = _concat(inputs)
  b = inputs['view1'].shape[0]
  (_, _, p), _ = method.apply(state.params, state.batch_stats, x)
  (_, zt, _), _ = method.apply(state.method_state['target_params'],
                               state.method_state['target_batch_stats'], x)
  expected = (losses.byol_loss(p[:b], zt[b:]) +
              losses.byol_loss(p[b:], zt[:b]))
  same_view = losses.byol_loss(p[:b], zt[:b]) + losses.byol_loss(p[b:], zt[b:])
  got = _method_loss(method, state, inputs)
  assert got == pytest.approx(float(expected), rel=1e-5)
  assert abs(float(same_view) - float(expected)) > 1e-3  # The test can tell.
  # The target is stopped: no gradient reaches the target params.
  grads = jax.grad(lambda t: method.loss(
      state.params, state.batch_stats, dict(state.method_state,
                                            target_params=t),
      inputs, jax.random.key(0), 0)[0])(state.method_state['target_params'])
  assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(grads))


def test_dino_student_and_teacher_temperatures_and_pairs():
  config, method, state, _ = setup('dino')
  state = _moved_target(state)
  ms = dict(state.method_state)
  ms['center'] = 0.1 * jax.random.normal(jax.random.key(3),
                                         ms['center'].shape)
  state = state.replace(method_state=ms)
  inputs = _inputs()
  x = _concat(inputs)
  m = config.method
  step = 40  # Inside the teacher-temperature warm-up: 0.04 < τ_t < 0.07.
  t_temp = float(method.teacher_temperature(step))
  assert m.teacher_temp_start < t_temp < m.teacher_temp
  (_, student), _ = method.apply(state.params, state.batch_stats, x)
  (_, teacher), _ = method.apply(ms['target_params'],
                                 ms['target_batch_stats'], x)
  expected = losses.dino_loss(student, teacher, ms['center'], m.student_temp,
                              t_temp)
  swapped = losses.dino_loss(student, teacher, ms['center'], t_temp,
                             m.student_temp)
  got = _method_loss(method, state, inputs, step)
  assert got == pytest.approx(float(expected), rel=1e-5)
  assert abs(float(swapped) - float(expected)) > 1e-3


@pytest.mark.parametrize('name', ['vicreg', 'barlow'])
def test_two_branch_losses_pair_view_one_with_view_two(name):
  config, method, state, _ = setup(name)
  inputs = _inputs()
  (_, z), _ = method.apply(state.params, state.batch_stats, _concat(inputs))
  b = inputs['view1'].shape[0]
  m = config.method
  if name == 'vicreg':
    sim, var, cov = losses.vicreg_terms(z[:b], z[b:])
    expected = m.sim_weight * sim + m.var_weight * var + m.cov_weight * cov
  else:
    expected = losses.barlow_twins_loss(z[:b], z[b:], m.lambd, m.scale)
  assert _method_loss(method, state, inputs) == pytest.approx(
      float(expected), rel=1e-5)


def test_mocov2_queries_meet_the_other_views_keys_and_the_queue():
  config, method, state, _ = setup('mocov2', shuffle_bn_groups=1)
  state = _moved_target(state)
  ms = dict(state.method_state)
  ms['queue'] = l2_normalize(jax.random.normal(jax.random.key(5),
                                               ms['queue'].shape))
  state = state.replace(method_state=ms)
  inputs = _inputs()
  x = _concat(inputs)
  b = inputs['view1'].shape[0]
  (_, z), _ = method.apply(state.params, state.batch_stats, x)
  (_, zk), _ = method.apply(ms['target_params'], ms['target_batch_stats'], x)
  q, k = l2_normalize(z), l2_normalize(zk)
  tau = config.method.temperature
  one = losses.moco_infonce(q[:b], k[b:], ms['queue'], tau)
  expected = (0.5 * (one + losses.moco_infonce(q[b:], k[:b], ms['queue'],
                                                tau))
              if config.method.symmetric else one)
  assert _method_loss(method, state, inputs) == pytest.approx(
      float(expected), rel=1e-5)


def test_supervised_is_the_cross_entropy_of_both_views_labels():
  _, method, state, _ = setup('supervised')
  inputs = _inputs()
  (_, logits), _ = method.apply(state.params, state.batch_stats,
                                _concat(inputs))
  labels = np.concatenate([inputs['label']] * 2)
  log_p = np.asarray(jax.nn.log_softmax(logits))
  expected = -np.mean(log_p[np.arange(len(labels)), labels])
  assert _method_loss(method, state, inputs) == pytest.approx(
      float(expected), rel=1e-5)
