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
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHON=sys.executable,
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


def _wait_for(path, timeout=240.0):
  import time  # pylint: disable=g-import-not-at-top
  deadline = time.time() + timeout
  while not (os.path.exists(path) and os.path.getsize(path)):
    assert time.time() < deadline, f'{path} never appeared'
    time.sleep(0.5)


def test_slurm_script_forwards_sigterm_saves_and_requeues(synthetic_npz,
                                                          tmp_path):
  """launch/slurm.sbatch under bash with a fake srun (runs its command) and
  scontrol (records its arguments): SIGTERM to the batch shell, as
  --signal=B:TERM sends it, must reach the training process, which saves a
  checkpoint and exits 75, and the script must requeue the job."""
  import signal  # pylint: disable=g-import-not-at-top
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  (bin_dir / 'srun').write_text('#!/usr/bin/env bash\nexec "$@"\n')
  log = tmp_path / 'scontrol.log'
  (bin_dir / 'scontrol').write_text(
      f'#!/usr/bin/env bash\necho "$@" >> {log}\n')
  for f in ('srun', 'scontrol'):
    os.chmod(bin_dir / f, 0o755)
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHON=sys.executable,
             PATH=f'{bin_dir}:{os.environ["PATH"]}', SLURM_JOB_ID='4242')
  env['XLA_FLAGS'] = ' '.join(f for f in env.get('XLA_FLAGS', '').split()
                              if 'device_count' not in f)
  workdir = str(tmp_path / 'job')
  port = portpicker.pick_unused_port()
  args = [*_overrides(synthetic_npz)[:-1], '--config.total_steps=100000',
          '--config.log_every_steps=1',
          f'--coordinator_address=127.0.0.1:{port}', '--num_processes=1',
          '--process_id=0']
  proc = subprocess.Popen(['bash', 'launch/slurm.sbatch', CONFIG, workdir,
                           *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  _wait_for(os.path.join(workdir, 'metrics.jsonl'))
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=240)
  assert proc.returncode == 75, err[-2000:]
  assert 'Stopped by SIGTERM' in err
  assert log.read_text().split() == ['requeue', '4242']
  step, _ = read_checkpoint_state(workdir)
  assert 0 < step < 100000
