"""The launch scripts run end to end at tiny size (synthetic data)."""

import csv
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO


def _run(args, tmp_path):
  proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True,
                        text=True, timeout=600,
                        env=dict(os.environ, PYTHONUNBUFFERED='1'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout


def _run_fails(args, tmp_path):
  """Runs a launcher that must fail; returns its stderr."""
  del tmp_path
  proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True,
                        text=True, timeout=600,
                        env=dict(os.environ, PYTHONUNBUFFERED='1'))
  assert proc.returncode != 0, proc.stdout[-3000:]
  return proc.stderr


def test_compare_pairs_writes_tables_curves_and_plot(synthetic_npz, tmp_path):
  # No --out: the tables of a non-default workdir go to <workdir>/report, not
  # over the committed docs/compare_pairs.
  out = tmp_path / 'runs' / 'report'
  docs = os.path.join(REPO, 'docs', 'compare_pairs', 'results.md')
  before = os.stat(docs).st_mtime_ns
  args = ['launch/compare_pairs.py', f'--dataset={synthetic_npz}',
          '--pairs_per_class=10', '--epochs=2', '--eval_every=1',
          '--batch_size=8', '--image_size=16', '--arch=resnet_tiny',
          '--width=1', f'--eval_datasets={synthetic_npz}',
          f'--workdir={tmp_path / "runs"}']
  _run(args, tmp_path)
  assert os.stat(docs).st_mtime_ns == before
  with open(tmp_path / 'runs' / 'simclr_sp' / 'config.json') as f:
    assert json.load(f)['model']['init'] == 'pytorch'  # The peer's init.
  with open(out / 'results.csv') as f:
    rows = list(csv.DictReader(f))
  arms = {(r['pairs'], float(r['epoch'])) for r in rows}
  assert arms == {(a, e) for a in ('semantic', 'augmented')
                  for e in (0.0, 1.0, 2.0)}
  # Every table value is the run's own learning-curve number for that arm,
  # epoch, dataset and metric (the last epoch: its final evaluation).
  curve = {}
  for arm, run in (('semantic', 'simclr_sp'), ('augmented', 'simclr_pa')):
    with open(tmp_path / 'runs' / run / 'eval_curve.jsonl') as f:
      for line in f:
        point = json.loads(line)
        for d, r in point['results'].items():
          for m, v in r.items():
            curve[(arm, point['epoch'], d, m)] = v
    with open(tmp_path / 'runs' / run / 'eval.json') as f:
      for d, r in json.load(f)['results'].items():
        for m, v in r.items():
          curve[(arm, 2.0, d, m)] = v
  assert len(rows) == 2 * 3 * 3  # Arms × epochs × (probe, kNN@20, kNN@200).
  for r in rows:
    assert float(r['top1']) == pytest.approx(
        curve[(r['pairs'], float(r['epoch']), r['dataset'], r['metric'])])
  # Both arms start from the same untrained encoder (same network, seed).
  start = {r['pairs']: r['top1'] for r in rows
           if float(r['epoch']) == 0 and r['metric'] == 'probe'}
  assert start['semantic'] == start['augmented']
  text = (out / 'results.md').read_text()
  assert '| augmented | 2 |' in text and 'lightly peer, semantic' in text
  assert 'PS − PA by epoch' in text
  ps = {float(r['epoch']): float(r['top1']) for r in rows
        if r['pairs'] == 'semantic' and r['metric'] == 'probe'}
  pa = {float(r['epoch']): float(r['top1']) for r in rows
        if r['pairs'] == 'augmented' and r['metric'] == 'probe'}
  gap = [l for l in text.splitlines() if l.startswith('| 2 | ')][0]
  assert gap.split('|')[2].strip() == f'{ps[2.0] - pa[2.0]:+.2f}'
  assert (out / 'curve.png').stat().st_size > 10_000
  # Each finished arm left a committed record (with its learning curve): with
  # the arms' workdirs gone, a rerun trains nothing and rebuilds the same
  # table from the records.
  import shutil  # pylint: disable=g-import-not-at-top
  for arm, run in (('semantic', 'simclr_sp'), ('augmented', 'simclr_pa')):
    record = json.loads((out / 'runs' / f'{run}.json').read_text())
    assert record['pairs'] == arm and record['seed'] == 0
    assert [p['epoch'] for p in record['eval_curve']] == [0.0, 1.0, 2.0]
    shutil.rmtree(tmp_path / 'runs' / run)
  again = _run(args, tmp_path)
  assert again.count('done (') == 2 and 'Pretraining' not in again
  assert (out / 'results.md').read_text() == text


def test_early_steps_trains_a_changed_config_and_stops(smoke_config,
                                                       tmp_path):
  run = tmp_path / 'run'
  run.mkdir()
  c = smoke_config.copy_and_resolve_references()
  # Step 4 is no log or checkpoint boundary: the stop must not wait for one.
  c.total_steps, c.log_every_steps, c.checkpoint_every_steps = 40, 3, 20
  (run / 'config.json').write_text(c.to_json_best_effort())
  text = _run(['launch/early_steps.py', f'--run={run}',
               f'--workdir={tmp_path / "try"}', '--steps=4', '--every=2',
               '--set=model.init=pytorch', '--set=method.temperature=0.3'],
              tmp_path)
  with open(tmp_path / 'try' / 'config.json') as f:
    saved = json.load(f)
  # The changes are applied; the 40-step schedule is kept, stopped at 4.
  assert saved['model']['init'] == 'pytorch'
  assert saved['method']['temperature'] == 0.3 and saved['total_steps'] == 40
  rows = [l for l in text.splitlines() if l.startswith('| ') and
          l[2].isdigit()]
  steps = [int(l.split('|')[1]) for l in rows]
  # Stopped after exactly step 4, with its checkpoint, far from 40.
  assert steps == [1, 2, 4]
  assert sorted(os.listdir(tmp_path / 'try' / 'checkpoints')) == ['4']
  assert float(rows[-1].split('|')[3]) >= 1.0  # Effective rank.
  proc = subprocess.run(
      [sys.executable, 'launch/early_steps.py', f'--run={run}',
       f'--workdir={tmp_path / "try"}', '--set=model.nope=1'],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2 and 'already holds a run' in proc.stderr


def test_out_dir_keeps_experiments_off_the_committed_tables():
  sys.path.insert(0, REPO)
  from launch import cpu_scale  # pylint: disable=g-import-not-at-top

  class Flag:
    def __init__(self, value, default='runs/compare_pairs'):
      self.value, self.default = value, default

  default = Flag('runs/compare_pairs')
  other = Flag('runs/my_try')
  assert cpu_scale.out_dir('', default, 'docs/x') == 'docs/x'
  assert cpu_scale.out_dir('', other, 'docs/x') == 'runs/my_try/report'
  assert cpu_scale.out_dir('docs/y', other, 'docs/x') == 'docs/y'


def test_benchmark_prints_a_table(synthetic_npz, tmp_path):
  text = _run(['launch/benchmark.py', f'--dataset={synthetic_npz}',
               '--settings=resnet_tiny:1:16:8', '--steps=2',
               '--pipeline_batches=3', '--methods=byol'], tmp_path)
  rows = {}
  for line in text.splitlines():
    if line.startswith('| byol'):
      cells = [c.strip() for c in line.strip('|').split('|')]
      rows[cells[0]] = cells
  assert set(rows) == {f'byol resnet_tiny w1 16px b8 {w} aug'
                       for w in ('host', 'device')}
  for cells in rows.values():
    assert len(cells) == 11
    assert float(cells[3]) > 0 and float(cells[4]) > 0  # pairs/s
    assert float(cells[8]) > 0  # GFLOP per step from XLA's cost analysis.
    assert cells[10] == '–'  # No known peak on a CPU.
  # Making the views on the device adds their work to the step's FLOPs.
  host, device = (rows[f'byol resnet_tiny w1 16px b8 {w} aug']
                  for w in ('host', 'device'))
  assert float(device[8]) > float(host[8])


def test_compare_methods_runs_each_method_on_both_pair_sets(synthetic_npz,
                                                           tmp_path):
  out = tmp_path / 'out'
  args = ['launch/compare_methods.py', f'--dataset={synthetic_npz}',
          '--methods=simclr', '--pairs_per_class=10', '--epochs=1',
          '--batch_size=8', '--image_size=16', '--arch=resnet_tiny',
          '--width=1', f'--eval_datasets={synthetic_npz}',
          f'--workdir={tmp_path / "runs"}', f'--out={out}']
  text = _run(args, tmp_path)
  assert '3 of 3 runs collected' in text and 'skipped' not in text
  with open(out / 'results.csv') as f:
    rows = list(csv.DictReader(f))
  assert {(r['method'], r['pairs']) for r in rows} == {
      ('simclr', 'semantic'), ('simclr', 'augmented'),
      ('random init', 'pytorch init')}
  run_dirs = {('simclr', 'semantic'): 'simclr_sp',
              ('simclr', 'augmented'): 'simclr_pa'}
  for r in rows:  # Each value is its run's own end-of-run evaluation.
    name = run_dirs.get((r['method'], r['pairs']))
    if name:
      with open(tmp_path / 'runs' / name / 'eval.json') as f:
        results = json.load(f)['results']
      assert float(r['top1']) == pytest.approx(
          results[r['dataset']][r['metric']]), r
  assert (out / 'bars.png').stat().st_size > 5_000
  # SimCLR's runs are compare_pairs' arms: its SGD recipe and PyTorch init,
  # views cut from the stored images.
  with open(tmp_path / 'runs' / 'simclr_sp' / 'config.json') as f:
    c = json.load(f)
  assert (c['optim']['name'], c['optim']['base_lr'], c['model']['init'],
          c['method']['temperature'], c['data']['load_size']) == (
              'sgd', 0.12, 'pytorch', 0.5, -1)
  text = (out / 'results.md').read_text()
  assert "(SimCLR: model.init=pytorch)" in text
  # The settings line names every method that left its own optimizer.
  sys.path.insert(0, REPO)
  from launch import cpu_scale  # pylint: disable=g-import-not-at-top
  assert ', '.join(sorted(cpu_scale.CPU_OPTIMIZERS)) + (
      ' (cpu_scale.CPU_OPTIMIZERS)') in text
  # Each finished run left a record to commit: its results, monitor curve,
  # config and the hash of its pair file.
  import hashlib
  import shutil
  with open(out / 'runs' / 'simclr_sp.json') as f:
    record = json.load(f)
  with open(tmp_path / 'runs' / 'simclr_sp' / 'eval.json') as f:
    assert record['results'] == json.load(f)['results']
  assert record['config'] == c
  with open(c['data']['pair_file'], 'rb') as f:
    assert record['pair_file_sha256'] == hashlib.sha256(f.read()).hexdigest()
  with open(tmp_path / 'runs' / 'simclr_sp' / 'metrics.jsonl') as f:
    logged = [json.loads(line) for line in f]
  steps = record['curve']['step']
  assert steps == sorted({1, logged[-1]['step']} | {
      r['step'] for r in logged if r['step'] % 10 == 0})
  assert record['loss'] == [logged[0]['loss'], logged[-1]['loss']]
  assert len(record['curve']['embed_rank']) == len(steps)
  assert (out / 'rank.png').stat().st_size > 5_000
  # The floor: SimCLR's network with its init, evaluated before any step.
  with open(out / 'runs' / 'random_init_pytorch.json') as f:
    floor = json.load(f)
  assert floor['train_seconds'] == 0 and floor['loss'] == [None, None]
  assert floor['config']['model']['init'] == 'pytorch'
  assert floor['config']['method']['name'] == 'simclr'
  assert '| random init | pytorch init |' in text
  # Rebuilding the tables keeps the commit each run trained at.
  record['commit'] = 'abc1234'
  with open(out / 'runs' / 'simclr_sp.json', 'w') as f:
    json.dump(record, f)
  _run(args + ['--collect_only'], tmp_path)
  with open(out / 'runs' / 'simclr_sp.json') as f:
    assert json.load(f)['commit'] == 'abc1234'
  # A second invocation skips the finished runs, even when their workdirs are
  # gone (a new session's checkout holds only the committed records).
  shutil.rmtree(tmp_path / 'runs' / 'simclr_sp')
  shutil.rmtree(tmp_path / 'runs' / 'simclr_pa')
  shutil.rmtree(tmp_path / 'runs' / 'random_init_pytorch')
  (out / 'results.md').unlink()
  assert _run(args, tmp_path).count('skipped') == 3
  assert not (tmp_path / 'runs' / 'simclr_sp').exists()
  assert text.split('\n| simclr')[1:] == (
      out / 'results.md').read_text().split('\n| simclr')[1:]
  # Only some methods: the table says which runs are missing.
  _run(args[:2] + ['--methods=simclr,byol'] + args[3:] + ['--collect_only'],
       tmp_path)
  assert 'Not trained yet (3 of 6 runs): random_init_default, byol_sp, ' \
      'byol_pa.' in (
      out / 'results.md').read_text()
  # A record of other settings is refused, naming what differs.
  bad = _run_fails(args[:-1] + ['--seed=1', args[-1]], tmp_path)
  assert 'record of random_init_pytorch was trained with another config' in bad
  assert 'seed (0 → 1)' in bad
  # So is one of another length, which a resume could change but a finished
  # run cannot.
  bad = _run_fails(args[:-1] + ['--epochs=2', args[-1]], tmp_path)
  assert 'epochs (1.0 → 2.0)' in bad
  # A stale workdir of other settings is refused before its record is
  # written, so the committed record survives.
  pa = out / 'runs' / 'simclr_pa.json'
  kept = pa.read_bytes()
  stale = tmp_path / 'runs' / 'simclr_pa'
  stale.mkdir()
  pa_record = json.loads(kept)
  pa_record['config']['seed'] = 7
  (stale / 'config.json').write_text(json.dumps(pa_record['config']))
  (stale / 'eval.json').write_text(json.dumps(
      {'results': pa_record['results'], 'train_seconds': 1.0}))
  (stale / 'metrics.jsonl').write_text(json.dumps({'step': 1, 'loss': 1.0}))
  assert 'seed (7 → 0)' in _run_fails(args, tmp_path)
  assert pa.read_bytes() == kept
  shutil.rmtree(stale)
  record['pair_file_sha256'] = '0' * 64
  with open(out / 'runs' / 'simclr_sp.json', 'w') as f:
    json.dump(record, f)
  assert 'was trained on other pairs' in _run_fails(args, tmp_path)


def test_compare_methods_plans_every_method_and_the_supervised_baseline():
  from conftest import load_launcher
  module = load_launcher('compare_methods')
  planned = module.runs(list(module.METHODS) + ['supervised'])
  assert len(planned) == 2 * 7 + 1
  assert planned[:2] == [('simclr_sp', 'simclr', 'semantic'),
                         ('simclr_pa', 'simclr', 'augmented')]
  assert planned[-1] == ('supervised', 'supervised', 'augmented')
  # Every planned run has its config file.
  assert all(os.path.exists(os.path.join(REPO, 'configs', f'{n}.py'))
             for n, _, _ in planned)
  from ssl_pairs.errors import UserError
  import pytest
  with pytest.raises(UserError, match="Unknown method 'simsiam'"):
    module.runs(['simsiam'])
  # --pairs=augmented plans only the PA arms (the supervised run has none).
  assert module.runs(['dino', 'supervised'], ['augmented']) == [
      ('dino_pa', 'dino', 'augmented'),
      ('supervised', 'supervised', 'augmented')]
  with pytest.raises(UserError, match="Unknown pair source 'gps'"):
    module.runs(['dino'], ['gps'])
  # Every other method keeps its own init (BYOL collapses from PyTorch's at
  # CPU scale) unless --init names one for all, and its own optimizer but
  # BYOL's and DINO's LARS, which lose rank there too: they take SimCLR's SGD.
  for name, warmup in (('byol_sp', 0.0), ('dino_pa', 1.0)):
    c = module.run_config(name, 'pairs.csv')
    assert (c.optim.name, c.optim.base_lr, c.optim.weight_decay,
            c.optim.warmup_epochs, c.model.init, c.data.load_size) == (
                'sgd', 0.12, 5e-4, warmup, 'default', -1)
  # DINO's CPU recipe also sets its teacher EMA and BN in the head.
  assert (c.method.ema_base, c.method.use_bn_in_head) == (0.99, True)
  c = module.run_config('vicreg_sp', 'pairs.csv')
  assert (c.optim.name, c.model.init) == ('lars', 'default')
  from absl import flags
  for arg, check in (
      ('--optimizer=lars',
       lambda: module.run_config('byol_sp', 'p.csv').optim.name == 'lars'),
      ('--init=pytorch',
       lambda: module.run_config('byol_sp', 'p.csv').model.init == 'pytorch'),
      ('--arch=vit_tiny',
       lambda: module.run_config('simclr_sp', 'p.csv').model.init ==
       'default')):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(['compare_methods', arg])
    assert check(), arg
  load_launcher('compare_methods')  # Every flag back at its default.


def test_compare_methods_records_are_not_git_ignored():
  # The records are the table's only copy once a session's runs/ is gone.
  if not os.path.isdir(os.path.join(REPO, '.git')):
    pytest.skip('not a git checkout')
  proc = subprocess.run(
      ['git', 'check-ignore', '-q', 'docs/compare_methods/runs/byol_sp.json'],
      cwd=REPO, check=False)
  assert proc.returncode == 1  # 1: not ignored; 0 would be ignored.
  proc = subprocess.run(['git', 'check-ignore', '-q', 'runs/x/eval.json'],
                        cwd=REPO, check=False)
  assert proc.returncode == 0


def test_knn_benchmark_times_a_subset_and_extrapolates(tmp_path):
  text = _run(['launch/knn_benchmark.py', '--cases=3000x16',
               '--queries=1000', '--nofaiss'], tmp_path)
  line = [l for l in text.splitlines() if l.startswith('| 3000x16')][0]
  cells = [c.strip() for c in line.strip('|').split('|')]
  assert cells[1] == '3000 × 16' and cells[2] == 'ssl_pairs'
  assert cells[3] == '1000' and float(cells[4]) > 0
  full = float(cells[5].split()[0])
  assert '(extrapolated)' in cells[5]
  assert full == pytest.approx(3 * float(cells[4]), rel=2e-3)  # × N / queries.
  assert float(cells[6].split()[0]) > 0  # Peak RSS.


def test_compare_mined_runs_baselines_gps_and_spps(synthetic_npz, tmp_path):
  out = tmp_path / 'out'
  _run(['launch/compare_mined.py', f'--dataset={synthetic_npz}',
        '--methods=simclr', '--priors=checkpoint', '--epochs=1',
        '--batch_size=8', '--image_size=16', '--arch=resnet_tiny',
        '--width=1', f'--eval_datasets={synthetic_npz}',
        f'--workdir={tmp_path / "runs"}', f'--out={out}'], tmp_path)
  with open(out / 'results.csv') as f:
    rows = list(csv.DictReader(f))
  runs = {r['run'] for r in rows}
  assert runs == {'simclr-strong', 'simclr-weak', 'simclr-gps-checkpoint',
                  'simclr-spps'}
  augment = {r['run']: r['augment'] for r in rows}
  assert augment['simclr-weak'] == augment['simclr-gps-checkpoint'] == 'weak'
  precision = {r['run']: r['pair_precision'] for r in rows}
  assert precision['simclr-weak'] == ''  # Two views: nothing mined.
  with open(tmp_path / 'runs' / 'simclr-gps-checkpoint' /
            'pair_stats.json') as f:  # The run's own measured precision.
    assert float(precision['simclr-gps-checkpoint']) == pytest.approx(
        json.load(f)['pair_precision'])
  text = (out / 'results.md').read_text()
  assert 'SPPS set (δ=' in text and '85.58' in text
  # δ's prior embedding is the one the SPPS run read: extracted once.
  spps_dir = tmp_path / 'runs' / 'simclr-spps'
  assert len([f for f in os.listdir(spps_dir) if f.startswith('prior_')]) == 1
  assert (out / 'bars.png').stat().st_size > 5_000


def test_compare_temporal_reports_invariance_and_shot_knn(real_data_dir,
                                                          tmp_path):
  out = tmp_path / 'out'
  text = _run(['launch/compare_temporal.py', '--epochs=1', '--batch_size=16',
               '--arch=resnet_tiny', '--width=1', '--image_size=16',
               f'--workdir={tmp_path / "runs"}', f'--out={out}'], tmp_path)
  with open(out / 'results.csv') as f:
    rows = {r['encoder']: r for r in csv.DictReader(f)}
  assert set(rows) == {'random init', 'MoCo v2, augmented',
                       'MoCo v2, temporal', 'MoCo v2, temporal-tracker'}
  # No evaluated frame was pretrained on, nor is any within the temporal gap
  # (4) after a pretraining frame of its shot: the held-out frames are the
  # folders' files, the pretraining frames the npz's frame_index.
  import numpy as np  # pylint: disable=g-import-not-at-top
  split = tmp_path / 'runs' / 'shots_held_out_gap4'
  pre = np.load(split / 'pretraining_frames.npz')
  held = {int(f[:-4]): shot for part in ('train', 'test')
          for shot in os.listdir(split / part)
          for f in os.listdir(split / part / shot)}
  pre_frames = set(pre['frame_index'].tolist())
  assert pre_frames and held and not pre_frames & set(held)
  for frame, shot in held.items():
    same_shot = [p for p, s in zip(pre['frame_index'], pre['labels'])
                 if f'shot{s}' == shot]
    assert all(frame - p > 4 for p in same_shot), (frame, shot)
  assert len(os.listdir(split / 'train')) == len(os.listdir(split / 'test')) == 6
  assert len(pre_frames) + len(held) + 4 * 5 == 250  # Gaps of 5 split shots.
  for r in rows.values():  # (resnet_tiny has under 25 features: no RIS@25.)
    assert float(r['ris@10']) > 0
  assert 'RIS@10' in text


def _tiny_reproduce(synthetic_npz, tmp_path, *extra):
  # Width 2: 32 features, enough for the RIS's K = 25 (fewer give NaN).
  return ['launch/reproduce.py', f'--dataset={synthetic_npz}',
          '--arch=resnet_tiny', '--width=2', '--image_size=16',
          '--load_size=0', '--batch_size=8', '--epochs=1',
          '--images_per_class=6', '--data_scale=3,6',
          f'--eval_datasets={synthetic_npz}', '--videos=',
          '--invariance_n=12', f'--workdir={tmp_path / "runs"}',
          f'--out={tmp_path / "out"}', *extra]


def test_reproduce_trains_shared_runs_once_and_writes_tables(synthetic_npz,
                                                             tmp_path):
  tables = '--table=main,efficiency,data_scale,crop_scale'
  plan = _run(_tiny_reproduce(synthetic_npz, tmp_path, tables, '--dry_run'),
              tmp_path)
  # main's PS/PA are data_scale's 6-per-class rows and crop_scale's 0.08 row.
  assert '7 run(s)' in plan and '7 still to train' in plan
  # 8 classes × 6 pairs, 1 epoch of batch 8: 6 steps; all 80 images: 10.
  assert 'simclr_semantic_p6' in plan and '      6 steps' in plan
  assert 'simclr_all' in plan and '     10 steps' in plan
  text = _run(_tiny_reproduce(synthetic_npz, tmp_path, tables), tmp_path)
  assert text.count('=== simclr_') == 7
  out = tmp_path / 'out'
  for t in ('main', 'efficiency', 'data_scale', 'crop_scale'):
    assert (out / f'{t}.png').stat().st_size > 5_000, t
    with open(out / f'{t}.csv') as f:
      rows = list(csv.DictReader(f))
    assert len(rows) == {'main': 3, 'efficiency': 3, 'data_scale': 4,
                         'crop_scale': 3}[t]
  with open(out / 'main.csv') as f:
    main_rows = {r['pairs']: r for r in csv.DictReader(f)}
  assert set(main_rows) == {'semantic', 'augmented', 'all'}
  run_of = {'semantic': 'simclr_semantic_p6', 'augmented':
            'simclr_augmented_p6', 'all': 'simclr_all'}
  for pairs, r in main_rows.items():  # Each run's own evaluation.
    with open(tmp_path / 'runs' / run_of[pairs] / 'eval.json') as f:
      probe = json.load(f)['results']['synthetic.npz']['probe']
    assert float(r['synthetic.npz probe']) == pytest.approx(probe, abs=0.01)
  assert 'C10 83.60' in main_rows['semantic']['paper']
  with open(out / 'efficiency.csv') as f:
    eff = {r['pairs']: r for r in csv.DictReader(f)}
  assert eff['semantic']['time ÷ semantic'] == '1.00×'
  assert int(eff['all']['steps']) == 10 and int(eff['semantic']['steps']) == 6
  with open(out / 'crop_scale.csv') as f:
    crop = list(csv.DictReader(f))
  assert [r['min crop scale'] for r in crop] == ['0.08', '0.2', '0.5']
  # data_scale's rows differ in images per class; its settings line says so.
  data_scale_md = (out / 'data_scale.md').read_text()
  assert 'the images per class of each row' in data_scale_md
  assert '6 images per class' in (out / 'main.md').read_text()
  for r in crop:  # Invariance scores of each encoder, e.g. instance sets.
    assert float(r['RIS@25 instance']) > 0
  # Each table names the command that rebuilds it alone, with the scale's
  # flags of the invocation that trained it.
  md = (out / 'crop_scale.md').read_text()
  command = md.split('Command: `')[1].split('`')[0]
  assert command.startswith('python launch/reproduce.py --table=crop_scale ')
  assert f'--dataset={synthetic_npz}' in command and 'main,' not in command
  # A second invocation trains nothing and rebuilds the same tables.
  again = _run(_tiny_reproduce(synthetic_npz, tmp_path, tables), tmp_path)
  assert '=== ' not in again
  # Another seed in the same workdir would silently reuse seed 0's runs.
  proc = subprocess.run(
      [sys.executable, *_tiny_reproduce(synthetic_npz, tmp_path, tables,
                                        '--seed=1')],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  # One clear line, exit code 2 (ssl_pairs.cli), no traceback.
  assert proc.returncode == 2 and 'seed: 0 → 1' in proc.stderr
  assert 'Traceback' not in proc.stderr and 'error: ' in proc.stderr


def test_reproduce_paper_scale_plan_and_check_step(synthetic_npz, tmp_path):
  """--scale=paper keeps the paper's shape (only the data is shrunk here);
  one full-shape step of each method's config is test_configs' job, so the
  --check_step path is exercised at tiny size."""
  args = _tiny_reproduce(synthetic_npz, tmp_path, '--scale=paper',
                         '--table=main,methods', '--dry_run')
  args = [a for a in args if not a.startswith(
      ('--arch', '--width', '--image_size', '--load_size', '--batch_size',
       '--epochs'))]
  plan = _run(args, tmp_path)
  # 200 epochs of 48 pairs at batch 256 → 38 steps (rounded up).
  assert 'simclr_semantic_p6' in plan and '     38 steps' in plan
  assert '(resnet50, 64 px, simclr, lars, batch 256, default init)' in plan
  assert '(resnet50, 64 px, byol, lars, batch 256, default init)' in plan
  assert '(resnet50, 64 px, dino, ' in plan
  text = _run(_tiny_reproduce(synthetic_npz, tmp_path / 'cpu',
                              '--table=methods', '--check_step',
                              '--only=byol_augmented_p6'), tmp_path)
  lines = [l for l in text.splitlines() if l.startswith('step OK')]
  # At cpu scale only SimCLR takes PyTorch's init; BYOL keeps its own, and
  # takes SimCLR's SGD (its LARS collapses there).
  assert len(lines) == 1 and (
      'byol_augmented_p6 (resnet_tiny, 16 px, byol, sgd, batch 8, default '
      'init)') in lines[0]


def test_benchmark_compares_with_pytorch_on_the_same_batches(synthetic_npz,
                                                             tmp_path):
  pytest.importorskip('torch')
  text = _run(['launch/benchmark.py', f'--dataset={synthetic_npz}',
               '--settings=resnet18:0.125:16:8', '--steps=2',
               '--pipeline_batches=3', '--augment_on=host',
               '--compare_torch'], tmp_path)
  rows = {}
  for line in text.splitlines():
    if line.startswith('| '):
      cells = [c.strip() for c in line.strip('|').split('|')]
      rows[cells[0]] = cells
  ours = rows['simclr resnet18 w0.125 16px b8 host aug']
  torch_rows = [r for name, r in rows.items() if name.startswith('pytorch ')]
  assert len(torch_rows) == 1
  theirs = torch_rows[0]
  assert theirs[0].endswith('resnet18 w0.125 16px b8 host aug')
  assert theirs[1] == '–'  # Eager PyTorch compiles nothing.
  assert float(theirs[3]) > 0 and float(theirs[7]) > 0  # pairs/s
  assert theirs[8] == ours[8]  # The same network: XLA's FLOP count for both.


def test_conv_probe_weight_gradient_gemms_equal_xla():
  """The hand-written weight gradients the probe times must be the gradient."""
  text = _run(['launch/cpu_conv_probe.py', '--probe=conv', '--batch=2',
               '--repeats=1'], None)
  lines = [l for l in text.splitlines() if l.startswith('conv 3×3 float32')]
  assert len(lines) == 4
  for line in lines:
    for name in ('nine dots', 'im2col'):
      part = line.split(f'weight grad as {name} ')[1]
      assert float(part.split(' (max rel. diff ')[1].split(')')[0]) < 1e-5


def test_queue_drift_table_reads_blocks_back_from_the_pointer():
  """A queue of 6 blocks of 2 keys, block j's keys all at angle 0.3·j, written
  in order with the pointer at block 4 (so block 3 is the newest and block 4
  the oldest): age a compares block 3 with block (3 − a) mod 6."""
  sys.path.insert(0, REPO)
  from launch import queue_drift  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  angles = np.repeat(0.3 * np.arange(6), 2)
  queue = np.stack([np.cos(angles), np.sin(angles)], axis=1)
  table = queue_drift.drift_table(queue, ptr=8, keys_per_step=2)
  assert [a for a, _ in table] == [0, 1, 2, 4, 5]
  for age, cos in table:
    np.testing.assert_allclose(cos, np.cos(0.3 * (3 - (3 - age) % 6)),
                               rtol=1e-6)


def _seeds_report():
  import importlib.util
  spec = importlib.util.spec_from_file_location(
      'seeds_report', os.path.join(REPO, 'launch', 'seeds_report.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_seeds_report_means_sds_paired_differences_and_refusals(tmp_path):
  import copy
  import pytest
  from ssl_pairs.errors import UserError
  module = _seeds_report()
  with open(os.path.join(REPO, 'docs', 'compare_methods', 'runs',
                         'simclr_sp.json')) as f:
    base = json.load(f)
  # CIFAR-10 probe per seed: PS 40, 42, 44; PA 45, 43, 47 (PS − PA −5, −1,
  # −3: all negative); Tiny probe: PS 6, 5, 7 vs PA 5, 6, 6 (+1, −1, +1).
  values = {('semantic', 0): (40.0, 6.0), ('semantic', 1): (42.0, 5.0),
            ('semantic', 2): (44.0, 7.0), ('augmented', 0): (45.0, 5.0),
            ('augmented', 1): (43.0, 6.0), ('augmented', 2): (47.0, 6.0)}
  records = []
  for (arm, seed), (c10, tiny) in values.items():
    r = copy.deepcopy(base)
    r['pairs'], r['config']['seed'] = arm, seed
    r['config']['data']['pairs'] = 'pair_file'
    r['pair_file_sha256'] = arm
    r['results'] = {'cifar10': {'probe': c10, 'knn@200': c10 - 1},
                    'tiny_imagenet': {'probe': tiny, 'knn@200': tiny}}
    r['_path'] = f'{arm}_s{seed}.json'
    records.append(r)
  module.check_same_study(records)
  s = module.summarize(records)
  c10 = s[('cifar10', 'probe')]
  assert c10['semantic'] == (42.0, 2.0)
  assert c10['augmented'][0] == 45.0 and abs(c10['augmented'][1] - 2.0) < 1e-12
  assert c10['diff'] == {0: -5.0, 1: -1.0, 2: -3.0}
  assert c10['diff_stats'] == (-3.0, 2.0)
  assert c10['sign'] == 'PS below PA in all 3 paired seeds'
  assert s[('tiny_imagenet', 'probe')]['sign'] == (
      'signs disagree over 3 paired seeds: no direction')
  module.write(records, s, str(tmp_path), 'cmd')
  table = open(tmp_path / 'results.md').read()
  assert ('| cifar10 probe | 40.00 | 42.00 | 44.00 | 42.00 ± 2.00 | 45.00 | '
          '43.00 | 47.00 | 45.00 ± 2.00 | -5.00, -1.00, -3.00 | -3.00 ± 2.00 '
          '| PS below PA in all 3 paired seeds |') in table
  assert os.path.getsize(tmp_path / 'seeds.png') > 0
  # Refused: another setting than the seed, other pairs, a seed twice.
  other = copy.deepcopy(records)
  other[4]['config']['batch_size'] = 256
  with pytest.raises(UserError, match=r'augmented_s1.json differs from '
                     r'semantic_s0.json in more than the seed \(batch_size'):
    module.check_same_study(other)
  other = copy.deepcopy(records)
  other[1]['pair_file_sha256'] = 'x'
  with pytest.raises(UserError, match='semantic records were trained on 2 '
                     'different pair files'):
    module.check_same_study(other)
  with pytest.raises(UserError, match='both the semantic arm with seed 0'):
    module.check_same_study(records + [copy.deepcopy(records[0])])
