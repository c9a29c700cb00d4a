"""Preemption, damaged checkpoints and checkpoint versions."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
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
  err = _sigterm_after_steps(proc, metrics)
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


def _sigterm_after_steps(proc, metrics, steps=3, wait=300):
  """SIGTERM to ``proc`` once ``metrics`` holds ``steps`` rows; asserts the
  documented preemption exit (75) and returns its stderr."""
  deadline = time.time() + wait
  while time.time() < deadline and len(read_jsonl(metrics)) < steps:
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=240)
  assert proc.returncode == train.PREEMPTED_EXIT_CODE, err[-3000:]
  return err


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


def _killed_after_step_4(config, workdir):
  """A 6-step run stopped after step 4 as a preemption would (checkpoints 2
  and 4): the resume, not a finished run (which its rerun reports from
  eval.json without reading checkpoints), is what reads them."""
  config.total_steps = 6
  with pytest.raises(train.Preempted):
    train.run(config, workdir, stop_after_step=4)


def test_no_readable_checkpoint_is_refused_unless_restart_is_asked(
    smoke_config, tmp_path, capfd):
  """Every checkpoint damaged: the run says so and refuses to start over
  (that would throw the run's time away); --config.restart=True starts from
  step 0; the damaged checkpoints are kept; no asyncio noise."""
  workdir = str(tmp_path / 'run')
  smoke_config.eval.probe = False
  _killed_after_step_4(smoke_config, workdir)
  for step in (2, 4):
    _damage(os.path.join(checkpoint.checkpoint_dir(workdir), str(step)))
  capfd.readouterr()
  with pytest.raises(UserError, match=r'No checkpoint in .* is readable '
                     r'\(steps 2, 4.*restart=True'):
    train.run(smoke_config, workdir)
  out, err = capfd.readouterr()
  assert 'trying checkpoint 2' in out and 'no older checkpoint is left' in out
  assert 'falling back' not in out and '<bound method' not in out
  assert 'Exception ignored' not in err and 'Traceback' not in err
  aside = os.path.join(workdir, 'checkpoints_unreadable')
  assert sorted(os.listdir(aside)) == ['2', '4']
  again = smoke_config.copy_and_resolve_references()
  again.restart = True
  train.run(again, workdir)
  assert 'Resumed' not in capfd.readouterr().out
  assert sorted(os.listdir(aside)) == ['2', '4']  # Still kept.
  assert checkpoint.Checkpoints(workdir).manager.all_steps() == [4, 6]
  rows = read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
  assert [r['step'] for r in rows] == [1, 2, 3, 4, 5, 6]


def _eval_config(workdir, datasets):
  from configs import linear_eval  # pylint: disable=g-import-not-at-top
  cfg = linear_eval.get_config()
  cfg.restore = workdir
  cfg.eval.datasets = datasets
  cfg.eval.probe = False
  return cfg


@pytest.mark.parametrize('damage', ['arrays', 'config'])
def test_evaluating_a_damaged_checkpoint_falls_back_and_changes_nothing(
    smoke_config, tmp_path, capsys, damage):
  from ssl_pairs.evals import run as eval_run  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'run')
  smoke_config.eval.probe = False
  train.run(smoke_config, workdir)
  ckpt = checkpoint.checkpoint_dir(workdir)
  if damage == 'arrays':
    _damage(os.path.join(ckpt, '4'))
  else:  # The checkpoint's config metadata is garbage.
    with open(os.path.join(ckpt, '4', 'config', 'metadata'), 'w') as f:
      f.write('{not json')
  before = sorted(glob.glob(os.path.join(ckpt, '**'), recursive=True))
  capsys.readouterr()
  report = eval_run.evaluate_checkpoint(
      _eval_config(workdir, smoke_config.eval.datasets),
      str(tmp_path / 'eval'))
  out = capsys.readouterr().out
  assert ('checkpoint 4' in out and 'unreadable' in out and
          'evaluating checkpoint 2 instead' in out)
  assert report['step'] == 2
  # The training workdir is untouched: nothing moved or deleted.
  assert sorted(glob.glob(os.path.join(ckpt, '**'), recursive=True)) == before
  assert not os.path.exists(os.path.join(workdir, 'checkpoints_unreadable'))
  _damage(os.path.join(ckpt, '2'))
  with pytest.raises(UserError, match='No checkpoint in .* is readable'):
    eval_run.evaluate_checkpoint(
        _eval_config(workdir, smoke_config.eval.datasets),
        str(tmp_path / 'eval2'))


def test_evaluating_a_checkpoint_of_a_future_format_is_one_sentence(
    smoke_config, tmp_path):
  from ssl_pairs.evals import run as eval_run  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'run')
  smoke_config.eval.probe = False
  train.run(smoke_config, workdir)
  path = os.path.join(checkpoint.checkpoint_dir(workdir), '4', 'data',
                      'metadata')
  data = json.load(open(path))
  data['format_version'] = 7
  json.dump(data, open(path, 'w'))
  with pytest.raises(UserError, match='format 7 .* reads format 1'):
    eval_run.evaluate_checkpoint(
        _eval_config(workdir, smoke_config.eval.datasets),
        str(tmp_path / 'eval'))


def test_checkpoint_of_another_format_version_is_refused(smoke_config,
                                                         tmp_path):
  workdir = str(tmp_path / 'run')
  smoke_config.eval.probe = False
  _killed_after_step_4(smoke_config, workdir)
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


# ------------------------------------------------ one workdir, one run


def _main_cmd(npz, workdir, *extra):
  return [sys.executable, 'main.py', '--config=configs/simclr_sp.py:smoke',
          f'--workdir={workdir}', f'--config.data.dataset={npz}',
          '--config.data.classes=all', '--config.data.pairs_per_class=0',
          f'--config.eval.datasets={npz}', '--config.eval.probe=False', *extra]


def test_two_runs_on_one_workdir_one_trains_the_other_is_refused(
    synthetic_npz, tmp_path):
  """Started together: exactly one trains, the other exits 2 naming the
  holder; after a SIGKILL of the holder (no stale lock) a rerun resumes."""
  workdir = str(tmp_path / 'run')
  cmd = _main_cmd(synthetic_npz, workdir, '--config.total_steps=100000',
                  '--config.checkpoint_every_steps=2',
                  '--config.log_every_steps=1')
  procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
           for _ in range(2)]
  deadline = time.time() + 240
  while (time.time() < deadline and
         all(p.poll() is None for p in procs)):
    time.sleep(0.2)
  refused = [p for p in procs if p.poll() is not None]
  assert len(refused) == 1, 'neither run was refused'
  _, err = refused[0].communicate()
  assert refused[0].returncode == 2, err[-2000:]
  holder = next(p for p in procs if p is not refused[0])
  assert f'is in use by pid {holder.pid} on host' in err
  assert '(training)' in err and 'Traceback' not in err
  while (time.time() < deadline and
         not checkpoint.Checkpoints(workdir).manager.all_steps()):
    time.sleep(0.2)
  time.sleep(1.0)
  holder.kill()
  holder.communicate()
  rerun = subprocess.run(cmd[:-3] + ['--config.total_steps=40'], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
  assert rerun.returncode == 0, rerun.stderr[-2000:]
  assert 'Resumed' in rerun.stdout


def test_an_evaluation_writing_into_a_training_workdir_is_refused(
    smoke_config, tmp_path):
  from ssl_pairs import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  from ssl_pairs.evals import run as eval_run  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'run')
  smoke_config.eval.probe = False
  train.run(smoke_config, workdir)
  # Another process holds the lock (a training run): simulated by holding it
  # in a child process.
  child = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time; sys.path.insert(0, ".");'
       'from ssl_pairs import workdir as w\n'
       f'with w.exclusive({workdir!r}, "training"):\n'
       '  print("held", flush=True); time.sleep(60)'],
      cwd=REPO, stdout=subprocess.PIPE, text=True)
  assert child.stdout.readline().strip() == 'held'
  try:
    with pytest.raises(UserError, match=f'in use by pid {child.pid}'):
      eval_run.evaluate_checkpoint(
          _eval_config(workdir, smoke_config.eval.datasets))
    with pytest.raises(UserError, match='in use by'):
      train.run(smoke_config, workdir)
  finally:
    child.kill()
    child.wait()
  with workdir_lib.exclusive(workdir, 'test'):  # Free again after the kill.
    pass


def test_a_workdir_that_is_a_file_or_unwritable_is_one_sentence(
    smoke_config, tmp_path, monkeypatch):
  path = tmp_path / 'afile'
  path.write_text('not a folder')
  with pytest.raises(UserError, match='is an existing file, not a folder'):
    train.run(smoke_config, str(path))
  real = os.makedirs

  def read_only(name, *args, **kwargs):
    if 'readonly' in str(name):
      raise PermissionError(13, 'Permission denied')
    return real(name, *args, **kwargs)

  monkeypatch.setattr(os, 'makedirs', read_only)
  with pytest.raises(UserError, match='Cannot write to the workdir .* '
                     r'\(Permission denied\); choose a writable'):
    train.run(smoke_config, str(tmp_path / 'readonly'))


# ------------------------------------------------------ results kept


def test_re_evaluation_with_other_settings_keeps_every_result(smoke_config,
                                                             tmp_path):
  from ssl_pairs.evals import run as eval_run  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'run')
  smoke_config.eval.probe = False
  first = train.run(smoke_config, workdir)['results']['synthetic.npz']
  cfg = _eval_config(workdir, smoke_config.eval.datasets)
  cfg.eval.train_limit = 24
  eval_run.evaluate_checkpoint(cfg)
  report = json.load(open(os.path.join(workdir, 'eval.json')))
  history = [h for h in report['history'] if h['dataset'] == 'synthetic.npz']
  assert [h['n_train'] for h in history] == [40, 24]
  assert history[0]['knn@20'] == first['knn@20']  # The first is kept.
  assert report['results']['synthetic.npz']['n_train'] == 24  # Latest.
  md = open(os.path.join(workdir, 'eval.md')).read()
  assert 'Every evaluation written here' in md
  assert 'limits 24/all' in md and 'limits all/all' in md
  eval_run.evaluate_checkpoint(cfg)  # The same protocol again: no new row.
  report = json.load(open(os.path.join(workdir, 'eval.json')))
  assert len([h for h in report['history']
              if h['dataset'] == 'synthetic.npz']) == 2


def test_disk_full_while_writing_eval_json_keeps_the_old_file(
    smoke_config, tmp_path, monkeypatch):
  from ssl_pairs.evals import run as eval_run  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'run')
  smoke_config.eval.probe = False
  train.run(smoke_config, workdir)
  before = open(os.path.join(workdir, 'eval.json')).read()
  real_replace = os.replace

  def full(src, dst):
    if str(dst).endswith('eval.json'):
      raise OSError(28, 'No space left on device')
    return real_replace(src, dst)

  monkeypatch.setattr(os, 'replace', full)
  cfg = _eval_config(workdir, smoke_config.eval.datasets)
  cfg.eval.train_limit = 24
  with pytest.raises(UserError, match='No space left on device.*previous '
                     'version is intact'):
    eval_run.evaluate_checkpoint(cfg)
  assert open(os.path.join(workdir, 'eval.json')).read() == before
  assert not [f for f in os.listdir(workdir) if '.tmp' in f]


def test_one_class_and_too_large_k_are_flagged(tmp_path):
  from conftest import load_config, synthetic_images  # pylint: disable=g-import-not-at-top
  images, labels = synthetic_images(num_classes=2, per_class=12)
  one = str(tmp_path / 'one.npz')
  np.savez(one, images=images[:12], labels=labels[:12])
  two = str(tmp_path / 'two.npz')
  np.savez(two, images=images, labels=labels)
  config = load_config('simclr_sp')
  config.data.dataset = two
  config.data.classes, config.data.pairs_per_class = 'all', 0
  config.eval.datasets = f'{one},{two}'
  config.eval.probe = False
  config.eval.knn_k = '3,20'
  results = train.run(config, str(tmp_path / 'run'))['results']
  assert 'ONE CLASS' in results['one.npz']['note']
  assert 'kNN@20 uses more neighbours than the 6 training images' in (
      results['two.npz']['note'])
  assert 'kNN@3 ' not in results['two.npz']['note']
  md = open(tmp_path / 'run' / 'eval.md').read()
  assert 'ONE CLASS' in md


# -------------------------------------------------- interrupted endings


def test_ctrl_c_during_the_final_evaluation_exits_75_and_the_rerun_evaluates(
    synthetic_npz, tmp_path):
  workdir = str(tmp_path / 'run')
  # A probe with many iterations makes the final evaluation long enough.
  cmd = _main_cmd(synthetic_npz, workdir, '--config.total_steps=2')
  cmd[cmd.index('--config.eval.probe=False')] = '--config.eval.probe=True'
  proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, SSL_PAIRS_PAUSE_BEFORE_EVAL='1'))
  marker = os.path.join(workdir, 'final_eval_started')
  deadline = time.time() + 240
  while time.time() < deadline and not os.path.exists(marker):
    time.sleep(0.2)
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == train.PREEMPTED_EXIT_CODE, err[-2000:]
  assert 'Stopped by SIGINT during the final evaluation' in err
  assert 'Traceback' not in err and 'KeyboardInterrupt' not in err
  assert not os.path.exists(os.path.join(workdir, 'eval.json'))
  rerun = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                         timeout=300)
  assert rerun.returncode == 0, rerun.stderr[-2000:]
  assert os.path.exists(os.path.join(workdir, 'eval.json'))
  again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                         timeout=300)
  assert 'is finished (step 2 of 2, evaluated)' in again.stdout
  assert 'linear_eval.py --config.restore=' in again.stdout


def test_an_image_deleted_mid_run_is_one_sentence_and_keeps_the_checkpoint(
    smoke_config, tmp_path, monkeypatch):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from ssl_pairs.data import sources  # pylint: disable=g-import-not-at-top
  root = tmp_path / 'folder'
  rng = np.random.default_rng(0)
  for c in ('a', 'b'):
    os.makedirs(root / c)
    for i in range(8):
      Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
          root / c / f'{i}.png')
  monkeypatch.setattr(sources, '_PRELOAD_MAX_BYTES', 0)  # Read lazily.
  smoke_config.data.dataset = str(root)
  smoke_config.eval.datasets = smoke_config.data.dataset
  smoke_config.eval.probe = False
  smoke_config.total_steps = 2
  workdir = str(tmp_path / 'run')
  train.run(smoke_config, workdir)
  os.remove(root / 'b' / '3.png')
  smoke_config.total_steps = 40
  with pytest.raises(UserError, match=r'b/3.png is gone .* last checkpoint '
                     'is kept'):
    train.run(smoke_config, workdir)
  assert checkpoint.Checkpoints(workdir).manager.all_steps() == [2]


def test_sigterm_to_a_two_process_run_saves_one_step_in_both(synthetic_npz,
                                                             tmp_path):
  import portpicker  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'mp')
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHON=sys.executable,
             SSL_PAIRS_COORDINATOR_PORT=str(portpicker.pick_unused_port()))
  env['XLA_FLAGS'] = ' '.join(f for f in env.get('XLA_FLAGS', '').split()
                              if 'device_count' not in f)
  args = [f'--config.data.dataset={synthetic_npz}', '--config.data.classes=all',
          '--config.data.pairs_per_class=0',
          f'--config.eval.datasets={synthetic_npz}', '--config.eval.probe=False',
          '--config.log_every_steps=1']
  cmd = ['bash', 'launch/local_processes.sh', '2',
         'configs/simclr_sp.py:smoke', workdir]
  proc = subprocess.Popen(cmd + args + ['--config.total_steps=100000'],
                          cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  err = _sigterm_after_steps(proc, os.path.join(workdir, 'metrics.jsonl'))
  steps = {int(part.split(';')[0]) for part in err.split('after step ')[1:]}
  assert len(steps) == 1, err[-2000:]  # Both processes stopped at one step.
  stopped = steps.pop()
  assert checkpoint.Checkpoints(workdir).latest_step() == stopped
  rerun = subprocess.run(cmd + args + [f'--config.total_steps={stopped + 2}'],
                         cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert f'at step {stopped}' in rerun.stdout
