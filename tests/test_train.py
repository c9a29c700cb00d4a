"""End-to-end training on tiny synthetic data: report, resume, refusal, errors."""

import os
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO, read_checkpoint_state
from ssl_pairs.mining import tables as tables_lib
from ssl_pairs import checkpoint
from ssl_pairs import train
from ssl_pairs.data import pipeline
from ssl_pairs.errors import UserError
from ssl_pairs.evals import run as eval_run
from ssl_pairs.metrics import NonFiniteLossError, read_jsonl


def test_smoke_run_trains_checkpoints_and_reports(smoke_config, tmp_path):
  workdir = str(tmp_path / 'run')
  report = train.run(smoke_config, workdir)
  rows = read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
  assert [r['step'] for r in rows] == [1, 2, 3, 4]
  assert all(np.isfinite(r['loss']) and r['grad_norm'] > 0 for r in rows)
  assert {'embed_std', 'embed_rank', 'lr', 'pairs_per_sec'} <= set(rows[0])
  result = report['results']['synthetic.npz']
  assert 'stratified 50/50' in result['note']
  assert result['n_train'] == result['n_test'] == 40
  assert {'probe', 'knn@20', 'knn@200'} <= set(result)
  assert report['train_seconds'] > 0
  assert checkpoint.Checkpoints(workdir).manager.all_steps() == [2, 4]
  assert os.path.exists(os.path.join(workdir, 'eval.md'))
  assert os.listdir(os.path.join(workdir, 'tb'))

  # Evaluating the checkpoint on its own reproduces the end-of-run numbers.
  from configs import linear_eval
  cfg = linear_eval.get_config()
  cfg.restore = workdir
  cfg.eval.datasets = smoke_config.eval.datasets
  cfg.eval.probe_max_iter = smoke_config.eval.probe_max_iter
  out = eval_run.evaluate_checkpoint(cfg, str(tmp_path / 'eval'))
  again = out['results']['synthetic.npz']
  for k in ('knn@20', 'knn@200', 'probe'):
    assert again[k] == pytest.approx(result[k], abs=1e-6), k
  assert out['train_seconds'] == pytest.approx(report['train_seconds'], abs=1)

  # The same workdir with another temperature is refused, naming the key; a
  # longer run (a safe key) resumes and continues.
  changed = smoke_config.copy_and_resolve_references()
  changed.method.temperature = 0.5
  with pytest.raises(UserError, match=r'method\.temperature \(0\.2 → 0\.5\)'):
    train.run(changed, workdir)
  longer = smoke_config.copy_and_resolve_references()
  longer.total_steps = 6
  longer.eval.probe = False
  train.run(longer, workdir)
  rows = read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
  assert [r['step'] for r in rows] == [1, 2, 3, 4, 5, 6]


def test_learning_curve_points_from_epoch_zero(smoke_config, tmp_path,
                                              monkeypatch):
  seen = []  # A fingerprint of every encoder the evaluator is given.
  evaluate = eval_run.Evaluator.__call__

  def spy(self, variables, *args):
    seen.append([np.asarray(x, np.float64).sum()
                 for x in jax.tree.leaves(variables)])
    return evaluate(self, variables, *args)

  monkeypatch.setattr(eval_run.Evaluator, '__call__', spy)
  smoke_config.total_steps = 20  # 80 pairs / 8 = 10 steps per epoch.
  smoke_config.eval.every_epochs = 1.0
  smoke_config.eval.probe = False
  workdir = str(tmp_path / 'curve')
  train.run(smoke_config, workdir)
  curve = read_jsonl(os.path.join(workdir, 'eval_curve.jsonl'))
  assert [(r['step'], r['epoch']) for r in curve] == [(0, 0), (10, 1), (20, 2)]
  assert all('knn@20' in r['results']['synthetic.npz'] for r in curve)
  assert len(seen) == 3 and seen[0] != seen[2]
  # The random-init baseline on its own evaluates exactly the encoder of the
  # epoch-0 point (another seed gives another one) and reports its numbers.
  report = train.evaluate_init(smoke_config, str(tmp_path / 'init'))
  assert seen[3] == seen[0]
  assert report['step'] == 0 and report['train_seconds'] == 0.0
  init = report['results']['synthetic.npz']
  for k in ('knn@20', 'knn@200'):
    assert init[k] == curve[0]['results']['synthetic.npz'][k], k
  assert os.path.exists(str(tmp_path / 'init' / 'config.json'))
  assert not os.path.exists(str(tmp_path / 'init' / 'checkpoints'))
  smoke_config.seed = 1
  train.evaluate_init(smoke_config, str(tmp_path / 'init1'))
  assert seen[4] != seen[0]


def test_nonfinite_loss_stops_and_keeps_good_checkpoints(smoke_config, tmp_path):
  smoke_config.optim.name = 'sgd'
  smoke_config.optim.base_lr = 1e30
  smoke_config.total_steps = 6
  smoke_config.checkpoint_every_steps = 1
  smoke_config.log_every_steps = 1
  workdir = str(tmp_path / 'nan')
  with pytest.raises(NonFiniteLossError, match='NaN/inf at step'):
    train.run(smoke_config, workdir)
  ckpts = checkpoint.Checkpoints(workdir)
  for step in ckpts.manager.all_steps():
    _, _, variables, _ = checkpoint.restore_encoder(workdir, step)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(variables))


def test_a_nonfinite_step_stops_the_run_at_once_naming_it(smoke_config,
                                                         tmp_path,
                                                         monkeypatch):
  """Step 3's loss is made NaN (its state kept, as the real step does); with
  log_every_steps=50 the run must still stop right after it, naming step 3,
  with steps 1-2 logged and no later step run past the one already queued."""
  real = train.make_train_step

  def poisoned(method, tx, schedule, seed):
    inner = real(method, tx, schedule, seed)

    def train_step(state, batch):
      new, m = inner(state, batch)
      bad = state.step == 2  # The third step.
      new = jax.tree.map(lambda n, o: jnp.where(bad, o, n), new, state)
      return new, dict(m, loss=jnp.where(bad, jnp.nan, m['loss']),
                       nonfinite=jnp.where(bad, 1, m['nonfinite']))
    return train_step

  monkeypatch.setattr(train, 'make_train_step', poisoned)
  calls = []
  real_next = pipeline.DeviceIterator.__next__
  monkeypatch.setattr(pipeline.DeviceIterator, '__next__',
                      lambda self: calls.append(1) or real_next(self))
  smoke_config.total_steps = 40
  smoke_config.log_every_steps = 50
  smoke_config.checkpoint_every_steps = 50
  workdir = str(tmp_path / 'nan_now')
  with pytest.raises(NonFiniteLossError, match='NaN/inf at step 3 '):
    train.run(smoke_config, workdir)
  assert len(calls) <= 4  # Steps 1-3, and step 4 queued before the check.
  assert [r['step'] for r in read_jsonl(os.path.join(workdir,
                                                     'metrics.jsonl'))] == [1, 2]


def test_user_errors_are_one_sentence(smoke_config, tmp_path):
  bad = smoke_config.copy_and_resolve_references()
  bad.method.name = 'simsiam'
  with pytest.raises(UserError, match='Unknown method.*simclr'):
    train.run(bad, str(tmp_path / 'a'))
  bad = smoke_config.copy_and_resolve_references()
  bad.batch_size = 0
  with pytest.raises(UserError, match='batch_size=0 must be'):
    train.run(bad, str(tmp_path / 'b'))
  bad = smoke_config.copy_and_resolve_references()
  bad.data.pairs = 'pair_file'
  bad.data.pair_file = str(tmp_path / 'missing.csv')
  with pytest.raises(UserError, match='does not exist'):
    train.run(bad, str(tmp_path / 'c'))


class _Mesh:
  class devices:  # pylint: disable=invalid-name
    size = 4


def test_batch_not_divisible_by_devices_is_refused():
  from ssl_pairs import sharding
  with pytest.raises(UserError, match='multiple of the 4 devices'):
    sharding.check_batch_size(10, _Mesh)
  sharding.check_batch_size(12, _Mesh)


def _main(workdir, npz, *extra, env_extra=None, check=True):
  cmd = [sys.executable, os.path.join(REPO, 'main.py'),
         '--config=configs/simclr_sp.py:smoke', f'--workdir={workdir}',
         f'--config.data.dataset={npz}', '--config.data.classes=all',
         '--config.data.pairs_per_class=0', f'--config.eval.datasets={npz}',
         '--config.eval.train_limit=0', '--config.eval.test_limit=0',
         '--config.eval.probe=False', *extra]
  env = dict(os.environ, **(env_extra or {}))
  return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                        text=True, check=check, timeout=300)


def test_killed_twice_between_checkpoints_resumes_bitwise(synthetic_npz,
                                                          tmp_path):
  args = ('--config.total_steps=9', '--config.checkpoint_every_steps=3',
          '--config.log_every_steps=2')
  straight = str(tmp_path / 'straight')
  _main(straight, synthetic_npz, *args)
  killed = str(tmp_path / 'killed')
  for kill_at in (5, 8):  # Mid-epoch (10 steps/epoch), between checkpoints.
    proc = _main(killed, synthetic_npz, *args, check=False,
                 env_extra={train.KILL_AT_STEP_ENV: str(kill_at)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
  _main(killed, synthetic_npz, *args)

  step_a, a = read_checkpoint_state(straight)
  step_b, b = read_checkpoint_state(killed)
  assert step_a == step_b == 9
  flat_a = jax.tree_util.tree_leaves_with_path(a)
  flat_b = jax.tree_util.tree_leaves_with_path(b)
  assert [p for p, _ in flat_a] == [p for p, _ in flat_b]
  for (path, x), (_, y) in zip(flat_a, flat_b):
    assert np.array_equal(np.asarray(x), np.asarray(y)), path

  rows_a = read_jsonl(os.path.join(straight, 'metrics.jsonl'))
  rows_b = read_jsonl(os.path.join(killed, 'metrics.jsonl'))
  assert [r['step'] for r in rows_b] == list(range(1, 10))
  for ra, rb in zip(rows_a, rows_b):
    assert ra['loss'] == rb['loss'] and ra['grad_norm'] == rb['grad_norm']


def test_cli_reports_user_errors_without_traceback(synthetic_npz, tmp_path):
  proc = _main(str(tmp_path / 'w'), synthetic_npz, '--config.batch_size=500',
               check=False)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith(
      'error: The batch size 500 is larger than the 80 pairs')
  assert 'Traceback' not in proc.stderr
  # Mistakes in the overrides themselves: one line, exit 2, no traceback.
  for arg, expected in (
      ('--config.data.datset=x', 'error: a config override '
       '(--config.data.datset) does not fit the config: \'datset\' Did you '
       'mean "dataset"'),
      ('--config.batch_size=abc', 'error: flag --config.batch_size=abc: '
       'invalid literal')):
    proc = _main(str(tmp_path / 'w'), synthetic_npz, arg, check=False)
    assert proc.returncode == 2, proc.stderr
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(expected), \
        proc.stderr
  proc = subprocess.run([sys.executable, 'main.py',
                         '--config=configs/no_such_config.py'], cwd=REPO,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr
  assert proc.stderr.startswith('error: cannot load the config file given to '
                                '--config ([Errno 2] No such file')


def test_collapse_warning_fires_once_when_the_rank_falls(tmp_path, capsys):
  from ssl_pairs.metrics import MetricsLogger
  logger = MetricsLogger(str(tmp_path), 10, 0, 8, progress=False)
  base = {'loss': 5.0, 'nonfinite': 0, 'embed_std': 0.05}
  logger.write(1, [dict(base, embed_rank=60.0), dict(base, embed_rank=20.0)])
  assert 'collapsing' not in capsys.readouterr().out
  logger.write(3, [dict(base, embed_rank=5.0), dict(base, embed_rank=4.0)])
  out = capsys.readouterr().out
  assert out.count('collapsing') == 1
  assert 'step 3: effective rank 5.0 (was 60.0 at step 1)' in out
  logger.close()


def test_gps_pairs_train_end_to_end_and_checkpoint_priors(smoke_config,
                                                          tmp_path, capsys):
  """SimCLR on mined pairs; then that run's encoder as the next prior."""
  from ssl_pairs.data import pairs as pairs_lib
  from ssl_pairs.data import sources
  config = smoke_config.copy_and_resolve_references()
  config.data.pairs = 'gps'
  config.eval.probe = False
  workdir = str(tmp_path / 'gps')
  report = train.run(config, workdir)
  assert np.isfinite(report['results']['synthetic.npz']['knn@20'])
  assert 'Mined pairs: k=4 neighbours per image' in capsys.readouterr().out
  assert [f for f in os.listdir(workdir) if f.startswith('prior_')]
  src = sources.load_split(config.data.dataset, 'train', '', 16)
  cfg = config.data.copy_and_resolve_references()
  by_pixels = tables_lib.build_pair_set(cfg, src).neighbours
  tables = {}
  for prior in ('random_init', f'checkpoint:{workdir}'):
    cfg.gps.prior = prior
    tables[prior] = tables_lib.build_pair_set(cfg, src, config.model,
                                             str(tmp_path / 'cache'))
    assert tables[prior].neighbours.shape == (len(src), 4)
    assert not np.array_equal(tables[prior].neighbours, by_pixels)
  again = tables_lib.build_pair_set(cfg, src, config.model,
                                   str(tmp_path / 'cache'))  # From the cache.
  np.testing.assert_array_equal(again.neighbours,
                                tables[f'checkpoint:{workdir}'].neighbours)
  assert len(os.listdir(tmp_path / 'cache')) == 2


def test_load_size_cuts_views_from_larger_images(smoke_config):
  """load_size=-1 keeps the stored 16 px; views are still image_size."""
  from ssl_pairs.data import pipeline
  config = smoke_config.copy_and_resolve_references()
  config.data.image_size = 8
  assert train.load_size(config.data) == 8
  config.data.load_size = -1
  assert train.load_size(config.data) is None
  source, pair_set = train.load_pretraining_data(config)
  assert source.image_size == 16 and source[0].shape == (16, 16, 3)
  batch = pipeline.train_batches(source, pair_set, config.data, 8, seed=0)[0]
  assert batch['view1'].shape == (8, 8, 8, 3)
  config.data.load_size = 12
  assert train.load_pretraining_data(config)[0][0].shape == (12, 12, 3)
  config.data.load_size = -2
  with pytest.raises(UserError, match='load_size=-2'):
    train.validate_config(config)


def test_cli_fills_the_persistent_compilation_cache(synthetic_npz, tmp_path):
  """--compilation_cache (default ~/.cache/ssl_pairs/xla) stores the compiled
  train step, so a rerun or resume loads it instead of recompiling."""
  cache = tmp_path / 'xla'
  env = {k: v for k, v in os.environ.items()
         if k != 'JAX_COMPILATION_CACHE_DIR'}
  cmd = [sys.executable, os.path.join(REPO, 'main.py'),
         '--config=configs/simclr_sp.py:smoke', f'--workdir={tmp_path / "w"}',
         f'--config.data.dataset={synthetic_npz}', '--config.data.classes=all',
         '--config.data.pairs_per_class=0', f'--config.eval.datasets={synthetic_npz}',
         '--config.eval.probe=False', '--config.total_steps=1',
         f'--compilation_cache={cache}']
  subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True,
                 timeout=300)
  entries = os.listdir(cache)
  assert any(e.startswith('jit_train_step') for e in entries), entries


def test_itstime_is_due_at_multiples_and_after_the_last_step():
  assert [s for s in range(1, 13) if train.itstime(s, 5, 12)] == [5, 10, 12]
  assert [s for s in range(1, 13) if train.itstime(s, 0, 12)] == [12]
  assert [s for s in range(1, 4) if train.itstime(s, 1, 3)] == [1, 2, 3]
