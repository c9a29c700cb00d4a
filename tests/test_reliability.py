"""Preemption, damaged checkpoints and checkpoint versions."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO
from ssl_pairs import checkpoint
from ssl_pairs import train
from ssl_pairs.errors import UserError
from ssl_pairs.metrics import read_jsonl


def test_sigterm_saves_then_exits_75_and_the_rerun_resumes(synthetic_npz,
                                                           tmp_path):
  workdir = str(tmp_path / 'run')
  cmd = [sys.executable, 'main.py', '--config=configs/simclr_sp.py:smoke',
         f'--workdir={workdir}', f'--config.data.dataset={synthetic_npz}',
         '--config.data.classes=all', '--config.data.pairs_per_class=0',
         f'--config.eval.datasets={synthetic_npz}', '--config.eval.probe=False',
         '--config.total_steps=400', '--config.checkpoint_every_steps=1000',
         '--config.log_every_steps=1']
  proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
  metrics = os.path.join(workdir, 'metrics.jsonl')
  deadline = time.time() + 240
  while time.time() < deadline and len(read_jsonl(metrics)) < 3:
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == train.PREEMPTED_EXIT_CODE, err[-2000:]
  assert 'Stopped by SIGTERM after step' in err
  stopped = int(err.split('after step ')[1].split(';')[0])
  assert checkpoint.Checkpoints(workdir).latest_step() == stopped < 400
  assert [r['step'] for r in read_jsonl(metrics)] == list(range(1, stopped + 1))
  proc = subprocess.run(cmd[:-3] + ['--config.total_steps=' + str(stopped + 3)],
                        cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'Resumed' in proc.stdout
  assert [r['step'] for r in read_jsonl(metrics)] == list(
      range(1, stopped + 4))


def _damage(step_dir):
  for path in glob.glob(os.path.join(step_dir, 'state', '**', 'd', '*'),
                        recursive=True):
    with open(path, 'wb') as f:
      f.write(b'\0garbage')


def test_unreadable_latest_checkpoint_falls_back_and_is_kept(smoke_config,
                                                             tmp_path, capsys):
  workdir = str(tmp_path / 'run')
  smoke_config.eval.probe = False
  train.run(smoke_config, workdir)  # Checkpoints at steps 2 and 4.
  ckpt_dir = checkpoint.checkpoint_dir(workdir)
  _damage(os.path.join(ckpt_dir, '4'))
  longer = smoke_config.copy_and_resolve_references()
  longer.total_steps = 6
  train.run(longer, workdir)
  out = capsys.readouterr().out
  assert 'checkpoint 4' in out and 'unreadable' in out
  assert 'Resumed' in out and 'at step 2' in out
  # The damaged checkpoint is set aside, not deleted.
  assert os.path.isdir(os.path.join(workdir, 'checkpoints_unreadable', '4'))
  assert checkpoint.Checkpoints(workdir).manager.all_steps() == [4, 6]
  rows = read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
  assert [r['step'] for r in rows] == [1, 2, 3, 4, 5, 6]


def test_only_unreadable_checkpoints_start_fresh_without_losing_them(
    smoke_config, tmp_path):
  workdir = str(tmp_path / 'run')
  smoke_config.eval.probe = False
  smoke_config.keep_checkpoints = 1
  train.run(smoke_config, workdir)
  assert checkpoint.Checkpoints(workdir).manager.all_steps() == [4]
  _damage(os.path.join(checkpoint.checkpoint_dir(workdir), '4'))
  train.run(smoke_config, workdir)
  assert os.path.isdir(os.path.join(workdir, 'checkpoints_unreadable', '4'))
  assert checkpoint.Checkpoints(workdir).manager.all_steps() == [4]


def test_checkpoint_of_another_format_version_is_refused(smoke_config,
                                                         tmp_path):
  workdir = str(tmp_path / 'run')
  smoke_config.eval.probe = False
  train.run(smoke_config, workdir)
  for step in (2, 4):
    path = os.path.join(checkpoint.checkpoint_dir(workdir), str(step), 'data',
                        'metadata')
    data = json.load(open(path))
    data['format_version'] = 99
    json.dump(data, open(path, 'w'))
  with pytest.raises(UserError, match='format 99'):
    train.run(smoke_config, workdir)


@pytest.mark.parametrize('keep', [1, 2])
def test_disk_full_during_a_save_stops_clearly_and_resumes(smoke_config,
                                                           tmp_path,
                                                           monkeypatch, keep):
  """Even with keep_checkpoints=1 the last good checkpoint survives."""
  import errno
  import orbax.checkpoint as ocp
  real_save = ocp.CheckpointManager.save

  def full_disk_at_step_4(self, step, *args, **kwargs):
    if step == 4:
      raise OSError(errno.ENOSPC, 'No space left on device')
    return real_save(self, step, *args, **kwargs)

  monkeypatch.setattr(ocp.CheckpointManager, 'save', full_disk_at_step_4)
  smoke_config.eval.probe = False
  smoke_config.keep_checkpoints = keep
  workdir = str(tmp_path / 'run')
  with pytest.raises(checkpoint.CheckpointWriteError,
                     match=r'checkpoint 4 .* \(No space left on device\); '
                     r'checkpoint 2 is the last complete one'):
    train.run(smoke_config, workdir)
  assert checkpoint.Checkpoints(workdir).manager.all_steps() == [2]
  monkeypatch.setattr(ocp.CheckpointManager, 'save', real_save)
  train.run(smoke_config, workdir)  # Space freed: resumes from step 2.
  assert checkpoint.Checkpoints(workdir).manager.all_steps() == [2, 4][-keep:]
  rows = read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
  assert [r['step'] for r in rows] == [1, 2, 3, 4]


@pytest.mark.parametrize('key,value,message', [
    ('method.temperature', 0.0, 'method.temperature=0.0 must be positive'),
    ('data.augment.gray_prob', 1.5, r'gray_prob=1.5 must be a probability'),
    ('optim.warmup_epochs', -1.0, 'warmup_epochs=-1.0 must not be negative'),
    ('data.image_size', 0, 'image_size=0 must be positive'),
    ('data.pairs_per_class', -2, 'pairs_per_class=-2 must be'),
])
def test_impossible_sizes_and_rates_are_refused(smoke_config, tmp_path, key,
                                                value, message):
  section, name = key.rsplit('.', 1)
  target = smoke_config
  for part in section.split('.'):
    target = target[part]
  target[name] = value
  with pytest.raises(UserError, match=message):
    train.run(smoke_config, str(tmp_path / 'run'))


def test_kill_during_a_save_leaves_a_resumable_workdir(synthetic_npz,
                                                       tmp_path):
  from test_train import _main  # The CLI helper of the resume test.
  args = ('--config.total_steps=6', '--config.checkpoint_every_steps=2',
          '--config.log_every_steps=1')
  straight = str(tmp_path / 'straight')
  _main(straight, synthetic_npz, *args)
  killed = str(tmp_path / 'killed')
  proc = _main(killed, synthetic_npz, *args, check=False,
               env_extra={train.KILL_IN_SAVE_ENV: '4'})
  assert proc.returncode == -signal.SIGKILL
  # Whatever the kill caught (the write of 4 finished or not), the workdir
  # resumes and ends exactly where the uninterrupted run ends.
  _main(killed, synthetic_npz, *args)
  from conftest import read_checkpoint_state
  import jax
  import numpy as np
  (sa, a), (sb, b) = read_checkpoint_state(straight), read_checkpoint_state(
      killed)
  assert sa == sb == 6
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert np.array_equal(np.asarray(x), np.asarray(y))


def test_resume_refuses_changed_settings_and_added_ones_that_change_the_run():
  from ssl_pairs.errors import UserError  # pylint: disable=g-import-not-at-top
  saved = {'seed': 0, 'epochs': 8.0, 'method': {'name': 'mocov2'},
           'optim': {'base_lr': 0.3}}

  def current(**changes):
    c = json.loads(json.dumps(saved))
    for key, value in changes.items():
      section, _, name = key.rpartition('__')
      (c[section] if section else c)[name] = value
    return c

  # A longer run, and a setting unknown to the checkpoint: safe.
  assert checkpoint.config_differences(
      saved, current(epochs=16.0, method__new_setting=3)) == (
          [], ['epochs', 'method.new_setting'])
  # Settings added later, at the value the code used before them: no change.
  assert checkpoint.config_differences(saved, current(
      method__shuffle_bn_groups=1, optim__bias_lr_factor=1.0)) == ([], [])
  # ... at another value, or a changed setting: refused.
  assert checkpoint.config_differences(saved, current(
      method__shuffle_bn_groups=8, seed=1)) == (
          ['method.shuffle_bn_groups', 'seed'], [])
  with pytest.raises(UserError, match=r'optim.bias_lr_factor \(1.0 → 0.024\)'):
    checkpoint.check_resume_config(
        saved, current(optim__bias_lr_factor=0.024), '/runs/x')
