"""launch/studies: sweeps, the one runner, and compare_methods on it."""

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, load_config

from launch import cpu_scale
from launch import studies as s
from launch.studies import methods
from launch.studies import plots
from launch.studies import runner
from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data import sources
from ssl_pairs.errors import UserError


def _runs(runs):
  return [(r.name, dict(r.overrides)) for r in runs]


def test_sweep_product_zip_chain_make_the_exact_runs():
  grid = s.product(s.sweep('method', ['simclr', 'byol']),
                   s.sweep('pairs', ['semantic', 'augmented'],
                           names=['sp', 'pa']),
                   s.sweep('config.seed', [0, 1]))
  assert _runs(grid[:3]) == [
      ('simclr_sp_seed0', {'method': 'simclr', 'pairs': 'semantic',
                           'config.seed': 0}),
      ('simclr_sp_seed1', {'method': 'simclr', 'pairs': 'semantic',
                           'config.seed': 1}),
      ('simclr_pa_seed0', {'method': 'simclr', 'pairs': 'augmented',
                           'config.seed': 0})]
  assert [r.name for r in grid] == [
      f'{m}_{p}_seed{i}' for m in ('simclr', 'byol') for p in ('sp', 'pa')
      for i in (0, 1)]
  lrs = s.zip(s.sweep('config.optim.name', ['sgd', 'lars']),
              s.sweep('config.optim.base_lr', [0.12, 4.8]))
  assert _runs(lrs) == [
      ('sgd_base_lr0.12', {'config.optim.name': 'sgd',
                           'config.optim.base_lr': 0.12}),
      ('lars_base_lr4.8', {'config.optim.name': 'lars',
                           'config.optim.base_lr': 4.8})]
  both = s.chain(s.sweep('untrained', [True], names=['random_init']),
                 s.product(s.sweep('method', ['supervised']),
                           s.sweep('pairs', ['augmented'], names=[''])))
  assert _runs(both) == [('random_init', {'untrained': True}),
                         ('supervised', {'method': 'supervised',
                                         'pairs': 'augmented'})]
  run = grid[1]
  assert run.args == {'method': 'simclr', 'pairs': 'semantic'}
  assert run.config_overrides == {'seed': 1}
  assert both[0].untrained and not run.untrained
  with pytest.raises(ValueError, match="both set 'method'"):
    s.product(s.sweep('method', ['a']), s.sweep('method', ['b']))
  with pytest.raises(ValueError, match='lengths'):
    s.zip(s.sweep('a', [1, 2]), s.sweep('b', [1]))
  with pytest.raises(ValueError, match='2 values but 1 names'):
    s.sweep('a', [1, 2], names=['x'])


def test_methods_study_plans_compare_methods_runs_in_its_order():
  ctx = runner.context(methods.STUDY)
  assert [r.name for r in runner.plan(methods.STUDY, ctx)] == [
      'random_init_default', 'random_init_pytorch'] + [
          f'{m}_{p}' for m in methods.METHODS for p in ('sp', 'pa')] + [
              'supervised']
  assert ctx.workdir == os.path.abspath('runs/compare_methods')
  assert ctx.out == 'docs/compare_methods'  # The committed page.
  assert runner.context(methods.STUDY, workdir='x').out == 'x/report'
  ctx = runner.context(methods.STUDY, methods=['dino', 'supervised'],
                       pairs=['augmented'])
  assert _runs(runner.plan(methods.STUDY, ctx)) == [
      ('random_init_default', {'untrained': True, 'init': 'default'}),
      ('dino_pa', {'method': 'dino', 'pairs': 'augmented'}),
      ('supervised', {'method': 'supervised', 'pairs': 'augmented'})]
  with pytest.raises(UserError, match="--video means nothing"):
    runner.context(methods.STUDY, video='x.npz')
  with pytest.raises(UserError, match='no --scale=paper'):
    runner.context(methods.STUDY, scale='paper')
  assert 'methods' in s.names()
  with pytest.raises(UserError, match="Unknown study 'nope'"):
    s.get('nope')


def test_the_readme_example_is_a_study():
  with open(os.path.join(REPO, 'launch', 'studies', 'README.md')) as f:
    text = f.read()
  code = text.split('```python\n')[1].split('```')[0]
  assert len(code.strip().split('\n')) <= 20
  namespace = {}
  exec(compile(code, 'seeds.py', 'exec'), namespace)  # pylint: disable=exec-used
  study = namespace['STUDY']
  ctx = runner.context(study)
  planned = runner.plan(study, ctx)
  assert [r.name for r in planned] == [
      f'simclr_{p}_seed{i}' for p in ('sp', 'pa') for i in (0, 1, 2)]
  ctx.inputs = {'semantic': 'ps.csv', 'augmented': 'pa.csv'}
  c = runner.configure(study, planned[-1], ctx)
  assert (c.seed, c.data.pair_file, c.name) == (2, 'pa.csv',
                                                 'seeds-simclr_pa_seed2')
  assert runner.labels(study, planned[-1], ctx) == {
      'method': 'simclr', 'pairs': 'augmented', 'seed': 2}


def test_the_command_line_keeps_the_flags_that_decide_the_table():
  argv = ['--study=methods', '--collect_only', '--epochs=2', '--only', 'a,b',
          '--nodry_run', '--seed=1', '--study', 'methods', '--list']
  assert runner.table_flags(argv) == ['--epochs=2', '--seed=1']
  assert runner.study_from_argv(['--x=1', '--study=methods']) == 'methods'
  assert runner.study_from_argv(['--study', 'pairs']) == 'pairs'
  assert runner.study_from_argv(['--x=1']) is None


def _tiny_study(npz):
  """Floor + SimCLR on semantic pairs × --seeds, on the synthetic npz at
  compare_methods' test settings (so the compiled steps are shared)."""

  def setup(ctx):
    source = sources.load_split(ctx.dataset, 'train',
                                sources.resolve_data_dir(''), None)
    return pairs_lib.build_matched_sets(
        source, 'all', 10, 'images', 0,
        os.path.join(ctx.workdir, 'pairs'))['files']

  def config(run, ctx):
    c = load_config('simclr_sp', 'runlocal')
    c.data.dataset = ctx.dataset
    c.data.pairs = 'pair_file'
    c.data.pair_file = ctx.inputs['semantic']
    cpu_scale.apply(c, arch='resnet_tiny', width=1.0, image_size=16,
                    batch_size=8, epochs=ctx.epochs, seed=0,
                    eval_datasets=ctx.dataset, eval_train_limit=0)
    cpu_scale.apply_cpu_recipe(c)
    c.data.load_size = -1
    return c

  def probe(r, _):
    return f'{next(iter(r["results"].values()))["probe"]:.2f}'

  return s.Study(
      name='tiny', doc='a test', setup=setup, config=config,
      runs=lambda ctx: s.chain(
          s.sweep('untrained', [True], names=['random_init']),
          s.product(s.sweep('pairs', ['semantic']),
                    s.sweep('config.seed', [int(x) for x in ctx.seeds]))),
      labels=lambda run, ctx: {
          'arm': 'random init' if run.untrained else run['pairs'],
          'seed': run.get('config.seed', 0)},
      flags={'seeds': s.Flag('list', ['0', '1'], 'Seeds.')},
      scales={'cpu': {'dataset': npz, 'epochs': 1.0}},
      table=s.Table(
          title='# Tiny', settings=lambda ctx: f'{ctx.epochs:g} epoch.',
          columns=[s.label('arm'), s.label('seed'), s.Column('probe', probe),
                   s.reference('paper', {'semantic_seed0': 42.0})],
          csv=s.results_csv(('arm', 'seed')),
          reference_rows={'peer': {'probe': 41.0}}),
      plots=[s.Plot('curve.png', 'Loss', plots.curves(
          key='loss', colour='arm', style='arm', styles={}, ylabel='loss'),
                    caption='The loss.')])


def test_a_study_trains_records_skips_refuses_stale_records(synthetic_npz,
                                                           tmp_path, capsys):
  study = _tiny_study(synthetic_npz)
  work, out = tmp_path / 'runs', tmp_path / 'out'

  def ctx(**values):
    return runner.context(study, workdir=str(work), out=str(out), **values)

  results = runner.execute(study, ctx(), ['--epochs=1'])
  assert list(results) == ['random_init', 'semantic_seed0', 'semantic_seed1']
  for name in results:
    with open(work / name / 'eval.json') as f:
      assert results[name]['results'] == json.load(f)['results']
  # The sweep's config override and the study's prefix reached the configs.
  assert [results[n]['config']['seed'] for n in results] == [0, 0, 1]
  assert results['semantic_seed1']['config']['name'] == 'tiny-semantic_seed1'
  assert results['random_init']['train_seconds'] == 0
  assert results['semantic_seed0']['arm'] == 'semantic'
  md = (out / 'results.md').read_text()
  lines = md.split('\n')
  assert lines[:8] == ['# Tiny', '', 'Command: `python launch/run_study.py '
                       '--study=tiny --epochs=1`', '', '1 epoch.', '',
                       '| arm | seed | probe | paper |', '|---|---|---|---|']
  assert lines[9].startswith('| semantic | 0 | ') and lines[9].endswith(
      ' | 42.0 |')
  assert lines[10].endswith(' | – |')
  assert lines[11] == '| peer | – | 41.0 | – |'  # The reference row.
  assert lines[12:] == ['', 'The loss.', '', '![Loss](curve.png)', '']
  with open(out / 'results.csv') as f:
    rows = list(csv.DictReader(f))
  assert {(r['arm'], r['seed']) for r in rows} == {
      ('random init', '0'), ('semantic', '0'), ('semantic', '1')}
  assert (out / 'curve.png').stat().st_size > 1000
  # A rerun trains nothing, even with the workdirs gone: the records suffice.
  for name in results:
    shutil.rmtree(work / name)
  capsys.readouterr()
  assert runner.execute(study, ctx(), ['--epochs=1']) == results
  assert capsys.readouterr().out.count('skipped') == 3
  assert not (work / 'semantic_seed0').exists()
  assert (out / 'results.md').read_text() == md
  # A dry run shows each run's state; --only trains just what it names.
  runner.execute(study, ctx(seeds=['0', '1', '2'], dry_run=True))
  text = capsys.readouterr().out
  assert ('[4/4] semantic_seed2: to train (pairs=semantic, config.seed=2)'
          in text)
  assert '1 of 4 runs to train or resume' in text
  runner.execute(study, ctx(seeds=['0', '1', '2'], only=['semantic_seed0']))
  assert 'semantic_seed2: not in --only' in capsys.readouterr().out
  assert 'Not trained yet (1 of 4 runs): semantic_seed2.' in (
      out / 'results.md').read_text()
  with pytest.raises(UserError, match='--only=nope is not a run'):
    runner.execute(study, ctx(only=['nope']))
  # A record of other settings is refused, naming what differs...
  with pytest.raises(UserError, match=r'epochs \(1.0 → 2.0\)'):
    runner.execute(study, ctx(epochs=2.0))
  runner.execute(study, ctx(epochs=2.0, dry_run=True))
  assert 'semantic_seed0: refused: the record' in capsys.readouterr().out
  # ... and so is one of other pairs.
  path = out / 'runs' / 'semantic_seed1.json'
  record = json.loads(path.read_text())
  record['pair_file_sha256'] = '0' * 64
  path.write_text(json.dumps(record))
  with pytest.raises(UserError, match='trained on other pairs'):
    runner.execute(study, ctx(collect_only=True))


def test_measures_sections_and_page_name(synthetic_npz, tmp_path):
  """A study's measure runs once per finished run (its result kept in the
  record, not re-measured by a rerun), sections follow the table, and the
  page and CSV take the study's page name."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  calls = []

  def measure(run, run_dir, ctx):
    del ctx
    calls.append(run.name)
    path = os.path.join(run_dir, 'metrics.jsonl')
    if not os.path.exists(path):  # The untrained run.
      return {'logged_steps': 0}
    with open(path) as f:
      return {'logged_steps': sum(1 for _ in f)}

  base = _tiny_study(synthetic_npz)
  table = dataclasses.replace(base.table, sections=[
      s.Section('Steps', lambda results, ctx: [
          f'- {n}: {r["measures"]["logged_steps"]}'
          for n, r in results.items()]),
      s.Section('Empty', lambda results, ctx: [])])
  study = dataclasses.replace(base, page='tiny_table', measure=measure,
                              table=table, plots=[])
  work, out = tmp_path / 'runs', tmp_path / 'out'
  ctx = lambda **v: runner.context(study, workdir=str(work), out=str(out),
                                   seeds=['0'], **v)
  results = runner.execute(study, ctx())
  assert calls == ['random_init', 'semantic_seed0']
  with open(work / 'semantic_seed0' / 'metrics.jsonl') as f:
    steps = sum(1 for _ in f)
  assert steps > 0
  assert results['semantic_seed0']['measures'] == {'logged_steps': steps}
  assert results['random_init']['measures'] == {'logged_steps': 0}
  assert sorted(os.listdir(out)) == ['runs', 'tiny_table.csv',
                                     'tiny_table.md']
  md = (out / 'tiny_table.md').read_text()
  assert f'## Steps\n\n- random_init: 0\n- semantic_seed0: {steps}\n' in md
  assert '## Empty' not in md
  runner.execute(study, ctx())  # Finished workdirs: records rewritten...
  runner.execute(study, ctx(collect_only=True))
  assert calls == ['random_init', 'semantic_seed0']  # ... not re-measured.


def test_committed_compare_methods_page_rerenders_byte_for_byte(
    real_data_dir, tmp_path):
  """--collect_only rebuilds docs/compare_methods/results.md and .csv from
  the committed records, byte for byte (run where the defaults put the page:
  a copy of the records in a scratch folder). launch/run_study.py
  --study=methods is the same program (its Command line drops --study)."""
  docs = os.path.join(REPO, 'docs', 'compare_methods')
  page = tmp_path / 'docs' / 'compare_methods'
  shutil.copytree(os.path.join(docs, 'runs'), page / 'runs')
  env = dict(os.environ, SSL_PAIRS_DATA_DIR=real_data_dir, PYTHONPATH=REPO)

  def start(*args):
    return subprocess.Popen([sys.executable, *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)

  render = start(os.path.join(REPO, 'launch', 'compare_methods.py'),
                 '--collect_only')
  # The one CLI defines the study's own flags (--methods) from --study.
  one_cli = start(os.path.join(REPO, 'launch', 'run_study.py'),
                  '--study=methods', '--methods=nope', '--dry_run')
  _, err = one_cli.communicate(timeout=600)
  assert one_cli.returncode == 2 and "Unknown method 'nope'" in err, err
  _, err = render.communicate(timeout=600)
  assert render.returncode == 0, err[-3000:]
  for name in ('results.md', 'results.csv'):
    with open(os.path.join(docs, name), 'rb') as f:
      assert (page / name).read_bytes() == f.read(), name
  # Rebuilding leaves every record as committed.
  for name in os.listdir(page / 'runs'):
    with open(os.path.join(docs, 'runs', name), 'rb') as f:
      assert (page / 'runs' / name).read_bytes() == f.read()
