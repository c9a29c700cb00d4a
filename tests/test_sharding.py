"""One global batch on 1 device and on 4 forced CPU devices: same step.

Runs in a subprocess because XLA_FLAGS must be set before JAX is imported (the
test process has imported it already).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

SCRIPT = r'''
import json, sys
import jax, numpy as np
sys.path.insert(0, REPO)
from tests.conftest import load_config
from ssl_pairs import sharding, optim
from ssl_pairs.data import sources, pairs, pipeline
from ssl_pairs.images import normalize_images
from ssl_pairs.methods import get_method
from ssl_pairs.step import make_train_step
from ssl_pairs.train import create_state

assert jax.device_count() == 4, jax.devices()
config = load_config(CONFIG)
config.data.dataset = NPZ
config.data.classes = 'all'
config.data.pairs_per_class = 0
config.data.augment_on = AUG
src = sources.load_split(NPZ, 'train', '', config.data.image_size)
ps = pairs.build_pair_set(config.data, src)
batch = pipeline.train_batches(src, ps, config.data, 8, 0)[0]
out = {}
for n in (1, 4):
  mesh = sharding.make_mesh(jax.devices()[:n])
  method = get_method(config)
  schedule = optim.learning_rate_schedule(config.optim, 10, 10, 8)
  tx = optim.make_optimizer(config.optim, schedule)
  state = create_state(method, tx, config, mesh)
  data = sharding.data_sharding(mesh)
  device_batch = jax.tree.map(lambda x: jax.device_put(x, data), batch)
  assert len(device_batch['view1'].sharding.device_set) == n
  step = jax.jit(make_train_step(method, tx, schedule, 0), donate_argnums=0)
  inputs = dict(device_batch,
                view1=normalize_images(device_batch['view1']),
                view2=normalize_images(device_batch['view2']))
  grads = jax.jit(jax.grad(lambda p: method.loss(
      p, state.batch_stats, state.method_state, inputs, jax.random.key(0),
      0)[0]))(
          state.params)
  for _ in range(2):
    state, metrics = step(state, device_batch)
  out[n] = {
      'loss': float(metrics['loss']), 'grad_norm': float(metrics['grad_norm']),
      'grads': [np.asarray(x).ravel()[:64].tolist()
                for x in jax.tree.leaves(grads)],
      'params': [np.asarray(x).ravel()[:64].tolist()
                 for x in jax.tree.leaves(state.params)],
      'stats': [np.asarray(x).ravel()[:64].tolist()
                for x in jax.tree.leaves(state.batch_stats)]}
print('RESULT' + json.dumps(out))
'''


@pytest.mark.parametrize('config,augment_on', [('simclr_sp', 'host'),
                                               ('simclr_sp', 'device'),
                                               ('mocov2_sp', 'host')])
def test_four_devices_match_one_device(synthetic_npz, config, augment_on):
  """With device augmentation each sample's views come from its own key, so
  sharding the batch over 4 devices makes the same views and the same step.
  MoCo v2 (':smoke': BN shuffled over 2 groups, a queue, a key encoder) checks
  that its grouping and permutation of a sharded batch are the global ones."""
  env = dict(os.environ,
             XLA_FLAGS=(os.environ.get('XLA_FLAGS', '') +
                        ' --xla_force_host_platform_device_count=4').strip(),
             JAX_PLATFORMS='cpu')
  code = (f'REPO = {REPO!r}\nNPZ = {synthetic_npz!r}\n'
          f'AUG = {augment_on!r}\nCONFIG = {config!r}\n' + SCRIPT)
  proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  line = [l for l in proc.stdout.splitlines() if l.startswith('RESULT')][0]
  out = json.loads(line[len('RESULT'):])
  one, four = out['1'], out['4']
  np.testing.assert_allclose(four['loss'], one['loss'], rtol=1e-5)
  np.testing.assert_allclose(four['grad_norm'], one['grad_norm'], rtol=1e-4)
  for key in ('grads', 'params', 'stats'):
    assert len(one[key]) == len(four[key]) > 0
    for a, b in zip(one[key], four[key]):
      np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6, err_msg=key)
