"""Optimizers: LARS masks, linear LR scaling, warmup + cosine."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ssl_pairs import optim
from ssl_pairs.errors import UserError


def optim_config(**kw):
  c = ml_collections.ConfigDict(dict(name='lars', base_lr=0.4,
                                     weight_decay=0.1, momentum=0.0,
                                     warmup_epochs=2.0, trust_coefficient=0.02,
                                     bias_lr_factor=1.0))
  c.update(kw)
  return c


def test_schedule_scales_with_batch_warms_up_and_decays_to_zero():
  sched = optim.learning_rate_schedule(optim_config(), total_steps=100,
                                       steps_per_epoch=10, global_batch=512)
  peak = 0.4 * 512 / 256
  assert float(sched(0)) == 0.0
  np.testing.assert_allclose(sched(10), peak / 2, rtol=1e-6)
  np.testing.assert_allclose(sched(20), peak, rtol=1e-6)
  # Half-way through the cosine part the rate is half the peak.
  np.testing.assert_allclose(sched(60), peak / 2, rtol=1e-5)
  np.testing.assert_allclose(sched(100), 0.0, atol=1e-7)


def test_lars_skips_decay_and_trust_ratio_for_biases_and_norms():
  cfg = optim_config()
  tx = optim.make_optimizer(cfg, 1.0)
  params = {'kernel': jnp.full((3, 4), 2.0), 'bias': jnp.full((4,), 2.0),
            'scale': jnp.full((4,), 3.0)}
  grads = {'kernel': jnp.full((3, 4), 0.5), 'bias': jnp.full((4,), 0.5),
           'scale': jnp.full((4,), -1.0)}
  updates, _ = tx.update(grads, tx.init(params), params)
  # 1-D parameters: plain (momentum-free) SGD step −lr·g.
  np.testing.assert_allclose(updates['bias'], -0.5, rtol=1e-6)
  np.testing.assert_allclose(updates['scale'], 1.0, rtol=1e-6)
  # Kernels: g + wd·p, scaled by trust ratio η‖p‖/‖g + wd·p‖.
  g = 0.5 + 0.1 * 2.0
  trust = 0.02 * np.linalg.norm(np.full((3, 4), 2.0)) / np.linalg.norm(
      np.full((3, 4), g))
  np.testing.assert_allclose(updates['kernel'], -trust * g, rtol=1e-5)


def test_sgd_and_adamw_mask_weight_decay():
  params = {'kernel': jnp.ones((2, 2)), 'bias': jnp.ones((2,))}
  zeros = {'kernel': jnp.zeros((2, 2)), 'bias': jnp.zeros((2,))}
  for name in ('sgd', 'adamw'):
    tx = optim.make_optimizer(optim_config(name=name), 1.0)
    updates, _ = tx.update(zeros, tx.init(params), params)
    assert np.all(np.asarray(updates['bias']) == 0), name
    assert np.all(np.asarray(updates['kernel']) < 0), name


def test_bad_optimizer_settings_are_clear_errors():
  with pytest.raises(UserError, match='adamw, lars, sgd'):
    optim.make_optimizer(optim_config(name='adam'), 1.0)
  with pytest.raises(UserError, match='must be positive'):
    optim.make_optimizer(optim_config(base_lr=0.0), 1.0)


@pytest.mark.parametrize('name', ['lars', 'sgd', 'adamw'])
def test_bias_lr_factor_scales_only_biases_and_norms(name):
  """Every step's bias/norm update is the factor times the unfactored one
  (momentum and Adam moments included); weights are untouched."""
  params = {'kernel': jnp.full((3, 4), 2.0), 'bias': jnp.full((4,), 2.0),
            'scale': jnp.full((4,), 3.0)}
  plain = optim.make_optimizer(optim_config(name=name, momentum=0.9), 0.5)
  slow = optim.make_optimizer(
      optim_config(name=name, momentum=0.9, bias_lr_factor=0.024), 0.5)
  s_plain, s_slow = plain.init(params), slow.init(params)
  for step in range(3):
    grads = {k: jnp.full(v.shape, 0.3 * (step + 1) - 0.5 * i)
             for i, (k, v) in enumerate(params.items())}
    u_plain, s_plain = plain.update(grads, s_plain, params)
    u_slow, s_slow = slow.update(grads, s_slow, params)
    np.testing.assert_allclose(u_slow['kernel'], u_plain['kernel'], rtol=1e-6)
    for key in ('bias', 'scale'):
      assert np.all(np.asarray(u_plain[key]) != 0), (name, step, key)
      np.testing.assert_allclose(u_slow[key], 0.024 * u_plain[key],
                                 rtol=1e-5)


def test_bias_lr_factor_one_keeps_the_optimizer_state_of_older_checkpoints():
  params = {'kernel': jnp.ones((2, 2)), 'bias': jnp.ones((2,))}
  cfg = optim_config()
  del cfg['bias_lr_factor']  # A config written before the setting existed.
  old = optim.make_optimizer(cfg, 1.0).init(params)
  new = optim.make_optimizer(optim_config(bias_lr_factor=1.0), 1.0).init(params)
  assert jax.tree.structure(old) == jax.tree.structure(new)
  with pytest.raises(UserError, match='bias_lr_factor=0.0 must be positive'):
    optim.make_optimizer(optim_config(bias_lr_factor=0.0), 1.0)
