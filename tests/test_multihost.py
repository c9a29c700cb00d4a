"""Two processes with a local coordinator train the same model as one process.

Each process has one CPU device; together they form a 2-device mesh and each
reads only its half of every global batch (launch/local_processes.sh).
"""

import os
import subprocess
import sys

import jax
import numpy as np
import portpicker

from conftest import REPO, read_checkpoint_state
from ssl_pairs.metrics import read_jsonl


CONFIG = 'configs/simclr_sp.py:smoke'


def _overrides(npz):
  return [f'--config.data.dataset={npz}', '--config.data.classes=all',
          '--config.data.pairs_per_class=0', f'--config.eval.datasets={npz}',
          '--config.eval.probe_max_iter=20', '--config.total_steps=4']


def test_two_processes_match_one_process(synthetic_npz, tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             SSL_PAIRS_COORDINATOR_PORT=str(portpicker.pick_unused_port()))
  # One CPU device per process: drop any forced device count, keep the rest.
  env['XLA_FLAGS'] = ' '.join(f for f in env.get('XLA_FLAGS', '').split()
                              if 'device_count' not in f)
  one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
  proc = subprocess.run([sys.executable, 'main.py', f'--config={CONFIG}',
                         f'--workdir={one}', *_overrides(synthetic_npz)],
                        cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  proc = subprocess.run(['bash', 'launch/local_processes.sh', '2', CONFIG, two,
                         *_overrides(synthetic_npz)],
                        cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'on 2 device(s)' in proc.stdout

  step_a, a = read_checkpoint_state(one)
  step_b, b = read_checkpoint_state(two)
  assert step_a == step_b == 4
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-4,
                               atol=1e-6)
  rows_a = read_jsonl(os.path.join(one, 'metrics.jsonl'))
  rows_b = read_jsonl(os.path.join(two, 'metrics.jsonl'))
  assert [r['step'] for r in rows_b] == [1, 2, 3, 4]  # Written once.
  np.testing.assert_allclose([r['loss'] for r in rows_b],
                             [r['loss'] for r in rows_a], rtol=1e-5)
  assert os.path.exists(os.path.join(two, 'eval.json'))
