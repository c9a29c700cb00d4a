"""Online linear probe: the method's run is unchanged, the probe learns, and
its test accuracy is reported beside the offline probe."""

import json
import os

import jax
import numpy as np
import pytest

from conftest import load_config
from ssl_pairs import online_probe
from ssl_pairs import optim
from ssl_pairs import sharding
from ssl_pairs import train
from ssl_pairs.errors import UserError
from ssl_pairs.methods import get_method
from ssl_pairs.step import make_train_step
from test_methods import RUN, fixed_batch


def _steps(name, probe, steps=3):
  config = load_config(name)
  with config.unlocked():
    config.eval.online_probe = probe
  method = get_method(config, RUN)
  schedule = optim.learning_rate_schedule(config.optim, RUN.total_steps,
                                          RUN.steps_per_epoch,
                                          config.batch_size)
  tx = optim.make_optimizer(config.optim, schedule)
  state = train.create_state(method, tx, config,
                             sharding.make_mesh(jax.devices()[:1]))
  step = jax.jit(make_train_step(method, tx, schedule, 0))
  metrics = []
  for i in range(steps):
    state, m = step(state, fixed_batch(seed=i))
    metrics.append(jax.device_get(m))
  return state, metrics


@pytest.mark.parametrize('name', ['simclr_sp', 'byol_pa'])
def test_the_encoder_trains_bit_for_bit_as_without_the_probe(name):
  """BYOL: a method with state of its own (its target), which its update
  rebuilds; the probe's state must survive that and not touch it."""
  with_probe, m_with = _steps(name, True)
  without, m_without = _steps(name, False)
  probe = with_probe.method_state[online_probe.KEY]
  method_state = {k: v for k, v in with_probe.method_state.items()
                  if k != online_probe.KEY}
  for a, b in ((with_probe.params, without.params),
               (with_probe.batch_stats, without.batch_stats),
               (with_probe.opt_state, without.opt_state),
               (method_state, without.method_state)):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert [m['loss'] for m in m_with] == [m['loss'] for m in m_without]
  # The probe itself trained: three updates away from its zero init.
  assert np.abs(np.asarray(probe['params']['w'])).max() > 0
  assert all(0 <= m['online_probe_acc'] <= 100 for m in m_with)
  assert 'online_probe_acc' not in m_without[0]


def test_probe_update_learns_separable_features_and_skips_bad_steps():
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(4, 16)) * 3
  labels = np.repeat(np.arange(4), 32).astype(np.int32)
  features = centres[labels] + rng.normal(size=(128, 16))
  state = online_probe.init(16, 4)
  losses = []
  for _ in range(60):
    state, m = online_probe.update(state, features, labels, np.bool_(True))
    losses.append(float(m['online_probe_loss']))
  assert losses[0] == pytest.approx(np.log(4), rel=1e-6)  # Zero init.
  assert losses[-1] < 0.1 * losses[0]
  assert online_probe.accuracy(state['params'], features, labels) >= 99.0
  # A non-finite step of the method (keep=False) leaves the probe as it was.
  kept, _ = online_probe.update(state, features, labels, np.bool_(False))
  for x, y in zip(jax.tree.leaves(kept), jax.tree.leaves(state)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_a_run_reports_the_online_probe_and_refuses_to_toggle_it_on_resume(
    smoke_config, synthetic_npz, tmp_path):
  with smoke_config.unlocked():
    smoke_config.eval.online_probe = True
  smoke_config.eval.datasets = synthetic_npz
  workdir = str(tmp_path / 'run')
  report = train.run(smoke_config, workdir)
  result = report['results'][next(iter(report['results']))]
  assert 0.0 <= result['online_probe'] <= 100.0
  rows = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  assert all('online_probe_acc' in r for r in rows)
  assert 'online_probe top-1 %' in open(os.path.join(workdir, 'eval.md')).read()
  # The untrained floor has no online probe number (it never saw a batch).
  floor = train.evaluate_init(smoke_config, str(tmp_path / 'floor'))
  assert all('online_probe' not in r for r in floor['results'].values())
  # Turning it off (or on) changes what the state holds: refused on resume.
  with smoke_config.unlocked():
    smoke_config.eval.online_probe = False
    smoke_config.total_steps = 6
  with pytest.raises(UserError, match='eval.online_probe'):
    train.run(smoke_config, workdir)
