r"""What trained encoders transfer to: localization, object crops, probes.

  nice -n 5 python launch/transfer_table.py \
      --runs=PS_s2=runs/seeds/s2/semantic,PA_s1=runs/seeds/s1/augmented \
      --out=docs/results/transfer

For each ``NAME=WORKDIR`` of ``--runs`` (a finished training run), its final
checkpoint is evaluated — read-only: the results go to ``--scratch/NAME``,
never into the training workdir — with the usual kNN and linear probe on
``--datasets``, the box probe and the object-crop classification on
``--box_datasets`` (``eval.box_probe``, ``eval.object_crops``:
docs/evaluation.md, "Localization transfer"). The untrained encoder of the
same config (the workdir's config.json, seed included: ``train.evaluate_init``)
is evaluated the same way once per initialisation (runs of one seed, network
and method share it), as the floor.

Each evaluation leaves a record, ``--records/NAME.json`` (default
``<out>/runs``; the floors ``untrained_s<seed>.json``), meant to be
committed: its results, the workdir's config, the checkpoint step, the commit
and the command. A record of the same checkpoint, config and evaluation
settings is reused (``--force`` evaluates again), so adding a run later only
evaluates that run; ``--collect_only`` renders the table from the records
alone, without any workdir. The table: ``<out>/results.md`` and
``results.csv``, one row per floor, then the runs in ``--runs`` order;
``--collect_only`` without ``--runs`` renders the last table again.
"""

import csv
import datetime
import hashlib
import json
import os
import sys

from absl import flags

import ml_collections

from configs import common
from launch import records as records_lib
from ssl_pairs import checkpoint as checkpoint_lib
from ssl_pairs.errors import UserError
from ssl_pairs.evals import run as eval_run
from ssl_pairs.evals.sets import result_key
from ssl_pairs.metrics import read_jsonl
from ssl_pairs.metrics import say


_DEFAULT_EVAL = common.eval_config()

# The settings of this invocation: the flags' values (main), or any object
# with the same attributes (tests call ``build`` with their own).
ARGS = None


def _define_flags():
  """The program's flags (defined when run, so tests can import it)."""
  flags.DEFINE_list('runs', [], 'NAME=WORKDIR pairs of finished training runs '
                    '(with --collect_only: the record names, or empty = all).')
  flags.DEFINE_string('out', 'docs/results/transfer',
                      'Where results.md and results.csv go.')
  flags.DEFINE_string('records', '', "Where the records go ('' = <out>/runs).")
  flags.DEFINE_string('scratch', 'runs/transfer',
                      'Scratch folder of the evaluations (eval.json per run).')
  flags.DEFINE_bool('collect_only', False,
                    'Render the table from the records only; evaluate nothing.')
  flags.DEFINE_bool('force', False, 'Evaluate again even when a record of the '
                    'same checkpoint and settings exists.')
  flags.DEFINE_bool('allow_unfinished', False, 'Evaluate the latest checkpoint '
                    'of a run that has not finished training.')
  flags.DEFINE_string('data_dir', '', "Data folder ('' = $SSL_PAIRS_DATA_DIR).")
  flags.DEFINE_string('datasets', 'cifar10,tiny_imagenet',
                      'kNN + linear-probe datasets (eval.datasets).')
  flags.DEFINE_string('box_datasets', 'tiny_imagenet',
                      'Datasets with boxes: box probe and object crops.')
  flags.DEFINE_string('knn_k', _DEFAULT_EVAL.knn_k, 'eval.knn_k.')
  flags.DEFINE_integer('train_limit', 0, 'eval.train_limit (0 = all).')
  flags.DEFINE_integer('test_limit', 0, 'eval.test_limit (0 = all).')
  flags.DEFINE_integer('probe_max_iter', _DEFAULT_EVAL.probe_max_iter,
                       'eval.probe_max_iter.')
  flags.DEFINE_integer('batch_size', _DEFAULT_EVAL.batch_size,
                       'eval.batch_size.')


TITLES = {'cifar10': 'CIFAR-10', 'tiny_imagenet': 'Tiny-ImageNet',
          'voc2007': 'VOC 2007'}
UNTRAINED_PREFIX = 'untrained_s'


def eval_settings():
  """The evaluation settings of this invocation (what a record must match)."""
  return {'datasets': ARGS.datasets, 'box_datasets': ARGS.box_datasets,
          'knn_k': ARGS.knn_k, 'train_limit': ARGS.train_limit,
          'test_limit': ARGS.test_limit,
          'probe_max_iter': ARGS.probe_max_iter,
          'batch_size': ARGS.batch_size}


def eval_config(saved_eval=None) -> ml_collections.ConfigDict:
  """config.eval: today's defaults, the run's own settings, then ours."""
  c = common.eval_config()
  for k, v in (saved_eval or {}).items():
    if k in c:
      c[k] = v
  c.update(eval_settings())
  c.box_probe = True
  c.object_crops = True
  c.untrained = False
  c.every_epochs = 0.0
  return c


def parse_runs(values):
  """[(name, workdir)] of ``--runs``; one sentence for a malformed entry."""
  out = []
  for v in values:
    if '=' not in v:
      raise UserError(f'--runs entry {v!r} is not NAME=WORKDIR (e.g. '
                      'PS_s2=runs/seeds/s2/semantic).')
    name, workdir = (s.strip() for s in v.split('=', 1))
    if not name or name.startswith(UNTRAINED_PREFIX) or '/' in name:
      raise UserError(f'--runs name {name!r} must be a plain name that does '
                      f'not start with {UNTRAINED_PREFIX!r}.')
    if name in [n for n, _ in out]:
      raise UserError(f'--runs names {name!r} twice.')
    out.append((name, workdir))
  return out


def check_workdir(name, workdir):
  """(config dict, latest checkpoint step) of a finished run, else one
  sentence saying what is missing."""
  path = os.path.abspath(workdir)
  if not os.path.isdir(path):
    raise UserError(f'--runs {name}={workdir}: no such folder.')
  config_path = os.path.join(path, 'config.json')
  if not os.path.isfile(config_path):
    raise UserError(f'--runs {name}={workdir} holds no config.json, so it is '
                    'not the workdir of a training run.')
  with open(config_path) as f:
    config = json.load(f)
  try:
    directory = checkpoint_lib.find_checkpoint_dir(path)
  except UserError:
    raise UserError(f'--runs {name}={workdir} holds no checkpoint; train it '
                    'first (or re-train it if its checkpoints are gone).'
                    ) from None
  step = max(int(d) for d in os.listdir(directory) if d.isdigit())
  if not ARGS.allow_unfinished:
    report = {}
    if os.path.isfile(os.path.join(path, 'eval.json')):
      with open(os.path.join(path, 'eval.json')) as f:
        report = json.load(f)
    # The final report names the last step (older ones lack total_steps).
    if report.get('total_steps', report.get('step')) != step:
      raise UserError(f'--runs {name}={workdir} has not finished training '
                      f'(latest checkpoint step {step}, no final eval.json); '
                      'wait for it or pass --allow_unfinished.')
  return config, step


def init_key(config) -> dict:
  """What decides the untrained encoder of a training config."""
  return {'seed': config['seed'], 'model': config['model'],
          'method': config['method'],
          'image_size': config['data']['image_size'],
          'dataset': config['data']['dataset']}


def untrained_name(config, taken) -> str:
  """untrained_s<seed>, with a digest when another init has that name."""
  name = f'{UNTRAINED_PREFIX}{config["seed"]}'
  key = init_key(config)
  if name in taken and taken[name] != key:
    name += '_' + hashlib.sha256(json.dumps(key, sort_keys=True).encode()
                                 ).hexdigest()[:6]
  return name


def command() -> str:
  return getattr(ARGS, 'command', None) or (
      'python launch/transfer_table.py ' + ' '.join(sys.argv[1:]))


def read_record(record_dir, name):
  path = records_lib.record_path(record_dir, name)
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return json.load(f)


def write_record(record_dir, record):
  os.makedirs(record_dir, exist_ok=True)
  path = records_lib.record_path(record_dir, record['name'])
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w') as f:
    json.dump(record, f, indent=1, sort_keys=True)
    f.write('\n')
  os.replace(tmp, path)
  say(f'Wrote {path}.')


def _fresh_scratch(folder):
  """The scratch folder, without an earlier evaluation's report (ours)."""
  os.makedirs(folder, exist_ok=True)
  for f in ('eval.json', 'eval.md'):
    if os.path.exists(os.path.join(folder, f)):
      os.remove(os.path.join(folder, f))
  return folder


def _wanted_keys():
  keys = [result_key(n) for n, _ in eval_run.parse_datasets(ARGS.datasets)]
  for n, _ in eval_run.parse_datasets(ARGS.box_datasets):
    keys += [f'{result_key(n)}_boxes', f'{result_key(n)}_crops']
  return keys


def _kept(results):
  """The results of this evaluation's datasets, as JSON values."""
  return {k: v for k, v in json.loads(json.dumps(results)).items()
          if k in _wanted_keys()}


def evaluate_trained(name, workdir, config, step, scratch):
  """{dataset: result} of the run's checkpoint ``step`` (scratch out dir)."""
  from configs import linear_eval  # pylint: disable=g-import-not-at-top
  c = linear_eval.get_config()
  c.restore = os.path.abspath(workdir)
  c.restore_step = step
  c.data_dir = ARGS.data_dir
  c.download = False
  c.seed = config['seed']  # The training run's evaluation seed.
  c.eval = eval_config(config.get('eval'))
  say(f'Evaluating {name} ({workdir}, step {step}) into {scratch} ...')
  report = eval_run.evaluate_checkpoint(c, _fresh_scratch(scratch))
  return _kept(report['results']), report.get('skipped', {})


def evaluate_untrained(name, config, scratch):
  """{dataset: result} of the untrained encoder of ``config``."""
  from ssl_pairs import train  # pylint: disable=g-import-not-at-top
  c = ml_collections.ConfigDict(json.loads(json.dumps(config)))
  c.eval = eval_config(config.get('eval'))
  if ARGS.data_dir:
    c.data.data_dir = ARGS.data_dir
  c.data.download = False
  c.progress = False
  say(f'Evaluating the untrained encoder {name} (seed {config["seed"]}) into '
      f'{scratch} ...')
  report = train.evaluate_init(c, _fresh_scratch(scratch))
  return _kept(report['results']), report.get('skipped', {})


def _up_to_date(record, config, step, settings):
  return (record is not None and record.get('eval_settings') == settings and
          record.get('config') == config and record.get('step') == step)


def evaluate_all(runs, record_dir):
  """Evaluates every run and floor without an up-to-date record."""
  settings = eval_settings()
  todo = [(name, workdir, *check_workdir(name, workdir))
          for name, workdir in runs]  # Every workdir checked before any work.
  stamp = {'commit': records_lib.commit(), 'command': command()}
  floors = {}
  taken = {}  # Floor names already used: on disk, then in this invocation.
  if os.path.isdir(record_dir):
    for f in os.listdir(record_dir):
      if f.startswith(UNTRAINED_PREFIX) and f.endswith('.json'):
        r = read_record(record_dir, f[:-len('.json')])
        taken[r['name']] = r.get('init')
  for name, workdir, config, step in todo:
    record = read_record(record_dir, name)
    if _up_to_date(record, config, step, settings) and not ARGS.force:
      say(f'{name}: record up to date ({records_lib.record_path(record_dir, name)}).')
    else:
      results, skipped = evaluate_trained(
          name, workdir, config, step, os.path.join(ARGS.scratch, name))
      record = {'name': name, 'kind': 'trained', 'workdir': workdir,
                'step': step, 'seed': config['seed'], 'results': results,
                'skipped': skipped, 'eval_settings': settings,
                'config': config, 'evaluated': _now(), **stamp}
      write_record(record_dir, record)
    floor = untrained_name(config, {**taken, **{
        n: init_key(c) for n, (c, _) in floors.items()}})
    floors.setdefault(floor, (config, []))[1].append(name)
  for floor, (config, names) in floors.items():
    record = read_record(record_dir, floor)
    if (record is not None and record.get('eval_settings') == settings and
        record.get('init') == init_key(config) and not ARGS.force):
      say(f'{floor}: record up to date.')
      if sorted(set(record.get('floor_of', [])) | set(names)) != sorted(
          record.get('floor_of', [])):
        record['floor_of'] = sorted(set(record.get('floor_of', [])) |
                                    set(names))
        write_record(record_dir, record)
      continue
    results, skipped = evaluate_untrained(
        floor, config, os.path.join(ARGS.scratch, floor))
    write_record(record_dir, {
        'name': floor, 'kind': 'untrained', 'step': 0, 'seed': config['seed'],
        'floor_of': sorted(names), 'init': init_key(config),
        'results': results, 'skipped': skipped, 'eval_settings': settings,
        'config': config, 'evaluated': _now(), **stamp})
  add_training_checks(record_dir, runs)


def training_check(results, reference, against):
  """Largest |difference| per dataset between ``results`` and the training
  run's own evaluation ``reference`` of the same protocol (kNN and probe)."""
  diffs = {}
  for d, r in results.items():
    ref = reference.get(d)
    if not ref or ref.get('protocol') != r.get('protocol'):
      continue
    keys = [k for k in r if (k.startswith('knn@') or k == 'probe') and k in ref]
    if keys:
      diffs[d] = round(max(abs(r[k] - ref[k]) for k in keys), 6)
  return {'against': against, 'max_abs_diff': diffs} if diffs else None


def _training_reference(record, workdirs):
  """(results, path) the record can be checked against, or (None, None):
  a run's final eval.json; a floor's epoch-0 learning-curve point."""
  if record['kind'] == 'trained':
    path = os.path.join(record['workdir'], 'eval.json')
    if os.path.isfile(path):
      with open(path) as f:
        report = json.load(f)
      results = {d: r for d, r in report.get('results', {}).items()
                 if r.get('step') == record['step']}
      return results, path
    return None, None
  for name in record.get('floor_of', []):
    if name not in workdirs:
      continue
    path = os.path.join(workdirs[name], 'eval_curve.jsonl')
    if os.path.isfile(path):
      for point in read_jsonl(path):
        if point.get('step') == 0:
          return point['results'], f'{path} (step 0)'
    path = os.path.join(workdirs[name], 'eval.json')
    if os.path.isfile(path):  # A run trained with eval.untrained=True.
      with open(path) as f:
        untrained = json.load(f).get('untrained')
      if untrained:
        return untrained, f'{path} ("untrained")'
  return None, None


def add_training_checks(record_dir, runs):
  """Adds each record's check against its training run's own evaluation
  (where the workdir still has one) to the record."""
  workdirs = dict(runs)
  names = [n for n, _ in runs]
  for f in sorted(os.listdir(record_dir)):
    if not f.endswith('.json') or f.startswith('_'):
      continue
    record = read_record(record_dir, f[:-len('.json')])
    if record['name'] not in names and not set(
        record.get('floor_of', [])) & set(names):
      continue
    reference, path = _training_reference(record, workdirs)
    if reference is None:
      continue
    check = training_check(record['results'], reference, path)
    if check and check != record.get('training_check'):
      record['training_check'] = check
      write_record(record_dir, record)


def _now():
  return datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec='seconds')


# ------------------------------------------------------------------ table


def load_records(record_dir, names=None):
  """Floors (by seed), then the trained runs (in ``names`` order, else by
  name); one sentence when a named record is missing."""
  if not os.path.isdir(record_dir):
    raise UserError(f'No records in {record_dir}; run without '
                    '--collect_only first.')
  everything = {}
  for f in sorted(os.listdir(record_dir)):
    if f.endswith('.json') and not f.startswith('_'):
      with open(os.path.join(record_dir, f)) as fh:
        r = json.load(fh)
      everything[r['name']] = r
  trained = [r for r in everything.values() if r['kind'] == 'trained']
  if names:
    missing = [n for n in names if n not in everything]
    if missing:
      raise UserError(f'No record of {", ".join(missing)} in {record_dir}; '
                      'evaluate it first (without --collect_only).')
    trained = [everything[n] for n in names]
  used = {r['name'] for r in trained}
  floors = sorted((r for r in everything.values() if r['kind'] == 'untrained'
                   and (not names or used & set(r.get('floor_of', [])))),
                  key=lambda r: (r['seed'], r['name']))
  if not trained:
    raise UserError(f'No record of a trained run in {record_dir}.')
  return floors + trained


def _k_shown(settings):
  ks = [int(k) for k in str(settings['knn_k']).split(',') if k.strip()]
  return 20 if 20 in ks else ks[0]


def columns(settings):
  """[(title, dataset key, metric)] of the table."""
  datasets = [result_key(n) for n, _ in
              eval_run.parse_datasets(settings['datasets'])]
  box = result_key(eval_run.parse_datasets(settings['box_datasets'])[0][0])
  title = TITLES.get(box, box)
  k = _k_shown(settings)
  cols = [(f'{title} box mIoU %', f'{box}_boxes', 'box_miou'),
          (f'{title} box IoU≥0.5 %', f'{box}_boxes', 'box_iou50'),
          ('mean-box mIoU %', f'{box}_boxes', 'box_miou_meanbox'),
          (f'crop kNN@{k} %', f'{box}_crops', f'knn@{k}'),
          ('crop probe %', f'{box}_crops', 'probe'),
          (f'{title} full-image probe %', box, 'probe')]
  cols += [(f'{TITLES.get(d, d)} probe %', d, 'probe')
           for d in datasets if d != box]
  cols.append(('online probe %', box, 'online_probe'))
  return cols


def row_label(r):
  if r['kind'] == 'untrained':
    return f'untrained floor (seed {r["seed"]})'
  return r['name']


def value(r, dataset, metric):
  v = r['results'].get(dataset, {}).get(metric)
  return None if v is None else float(v)


def _describe(config):
  c = config
  return (f'{c["method"]["name"]}, {c["model"]["arch"]} width '
          f'{c["model"]["width_multiplier"]:g}, {c["data"]["image_size"]} px, '
          f'{c["epochs"]:g} epochs, batch {c["batch_size"]}, '
          f'{os.path.basename(str(c["data"]["dataset"]))} '
          f'{c["data"].get("split", "train")} (classes '
          f'{c["data"]["classes"]}), pairs {_pair_source(c)}')


def _pair_source(config):
  f = os.path.basename(config['data'].get('pair_file') or '')
  return f or config['data'].get('pairs', '-')


def _diff(a, b):
  return f'{a - b:+.2f}'


def summary(rows, cols):
  """One paragraph of what the numbers say (computed from them)."""
  floors = {r['seed']: r for r in rows if r['kind'] == 'untrained'}
  trained = [r for r in rows if r['kind'] == 'trained']
  box, crop_probe, full = cols[0], cols[4], cols[5]
  parts = []
  for r in trained:
    m, mb = value(r, box[1], 'box_miou'), value(r, box[1], 'box_miou_meanbox')
    f = floors.get(r['seed'])
    fm = value(f, box[1], 'box_miou') if f else None
    if m is None:
      continue
    s = (f'{r["name"]} (seed {r["seed"]}) reaches {m:.2f} % box mIoU, '
         f'{_diff(m, mb)} points against the mean training box ({mb:.2f} %)')
    if fm is not None:
      s += f' and {_diff(m, fm)} against its untrained floor ({fm:.2f} %)'
    parts.append(s)
  text = '; '.join(parts) + '.' if parts else ''
  floor_vs_mean = [
      f'the untrained floor of seed {f["seed"]} is at '
      f'{value(f, box[1], "box_miou"):.2f} % '
      f'({_diff(value(f, box[1], "box_miou"), value(f, box[1], "box_miou_meanbox"))} '
      'against the mean box)'
      for f in floors.values() if value(f, box[1], 'box_miou') is not None]
  if floor_vs_mean:
    text += ' For comparison, ' + '; '.join(floor_vs_mean) + '.'
  if len(trained) >= 2:
    a, b = trained[0], trained[1]
    diffs = []
    for title, d, m in (box, cols[1], cols[3], crop_probe, full, *cols[6:-1]):
      va, vb = value(a, d, m), value(b, d, m)
      if va is not None and vb is not None:
        diffs.append(f'{title.replace(" %", "")} {_diff(va, vb)}')
    if diffs:
      text += (f' {a["name"]} − {b["name"]}, in points: ' + ', '.join(diffs) +
               '.')
    if a['seed'] != b['seed']:
      text += (f' The two were trained with different seeds ({a["seed"]} and '
               f'{b["seed"]}), so that difference mixes the pair source with '
               'the seed.')
  for i, a in enumerate(trained):  # Same pairs, other seed: a seed spread.
    for b in trained[i + 1:]:
      if (_pair_source(a['config']) == _pair_source(b['config']) and
          a['seed'] != b['seed']):
        diffs = [f'{t.replace(" %", "")} {_diff(value(a, d, m), value(b, d, m))}'
                 for t, d, m in (box, cols[1], cols[3], crop_probe, full,
                                 *cols[6:-1])
                 if value(a, d, m) is not None and value(b, d, m) is not None]
        text += (f' Same pairs, other seed — {a["name"]} − {b["name"]}: ' +
                 ', '.join(diffs) + ' (one seed-to-seed difference, the '
                 'only measure of spread here).')
  text += (' Each row is a single training run (one seed), so no row has '
           'a spread of its own: a difference no larger than the seed-to-seed '
           'variation of the same runs (docs/results/pairs_seeds for the '
           'probes) is not a finding.')
  return text.strip()


def render(rows, out, cmd):
  """Writes <out>/results.md and results.csv; returns the markdown."""
  settings = rows[-1]['eval_settings']
  for r in rows:
    if r['eval_settings'] != settings:
      raise UserError(f'Record {r["name"]} was evaluated with other settings '
                      f'({r["eval_settings"]}) than {rows[-1]["name"]} '
                      f'({settings}); evaluate it again with --force.')
  cols = columns(settings)
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, 'results.csv'), 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['encoder', 'kind', 'seed', 'step', 'pairs'] +
               [f'{d}/{m}' for _, d, m in cols])
    for r in rows:
      w.writerow([r['name'], r['kind'], r['seed'], r['step'],
                  _pair_source(r['config']) if r['kind'] == 'trained' else ''] +
                 ['' if value(r, d, m) is None else repr(value(r, d, m))
                  for _, d, m in cols])
  header = ['encoder', 'training seed', 'pairs', 'step'] + [t for t, _, _ in
                                                            cols]
  lines = ['# What PS and PA encoders transfer to (CPU scale)', '',
           f'Command: `{cmd}`', '',
           '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for r in rows:
    cells = [row_label(r), str(r['seed']),
             _pair_source(r['config']) if r['kind'] == 'trained' else
             '— (before any step)', str(r['step'])]
    cells += ['—' if value(r, d, m) is None else f'{value(r, d, m):.2f}'
              for _, d, m in cols]
    lines.append('| ' + ' | '.join(cells) + ' |')
  first = rows[-1]['results']

  def protocol(key):
    text = eval_run.protocol_text(first.get(key, {}).get('protocol'))
    seed = f', seed {rows[-1]["seed"]}'
    if text.endswith(seed) and len({r['seed'] for r in rows}) > 1:
      text = text[:-len(seed)] + ", seed = the row's training seed"
    return text

  box_key, crop_key, full_key = cols[0][1], cols[3][1], cols[5][1]
  trained = [r for r in rows if r['kind'] == 'trained']
  online = [r['name'] for r in trained
            if r['config'].get('eval', {}).get('online_probe')]
  lines += [
      '', '## What the numbers show', '', summary(rows, cols), '',
      '## Notes', '',
      '- Runs: ' + '; '.join(
          f'{r["name"]} = `{r.get("workdir", "-")}` (seed {r["seed"]}, step '
          f'{r["step"]}, {_describe(r["config"])}, evaluated at commit '
          f'{r["commit"]})' for r in trained) + '.',
      '- Floors: the same config\'s network as initialised (same seed, '
      '`train.evaluate_init`), evaluated identically; one per initialisation '
      '(runs of one seed share it).',
      '- Box probe (`eval.box_probe`): a ridge head on the frozen features '
      'predicts each test image\'s object box; mIoU and the share with '
      'IoU ≥ 0.5 over the test images. "mean-box": the mean training box '
      'predicted for every test image — any encoder must beat it to have '
      'localized anything. Protocol: '
      f'{protocol(box_key)}.',
      '- Crop kNN / probe (`eval.object_crops`): train and test images cut to '
      'their object boxes, then the usual kNN and linear probe. Protocol: '
      f'{protocol(crop_key)}.',
      '- Full-image and other datasets\' probes: the usual offline linear '
      'probe on frozen features (`eval.probe`). Protocol: '
      f'{protocol(full_key)}.']
  if len(online) < len(trained):
    lines.append(
        '- Online probe: "—" because ' +
        (', '.join(r['name'] for r in trained if r['name'] not in online)) +
        ' trained without `eval.online_probe` (their config.json has '
        '`eval.online_probe=false`), so there is no online classifier to '
        'test. To get it, train with `--config.eval.online_probe=True`: a '
        'linear head trained inside the step on stop-gradient features, '
        'which leaves the encoder bit-identical '
        '(tests/test_online_probe.py); a run cannot turn it on when resumed.')
  checks = []
  for r in rows:
    c = r.get('training_check')
    if not c:
      continue
    worst = max(c['max_abs_diff'].values())
    checks.append(
        f'{row_label(r)}: {", ".join(c["max_abs_diff"])} '
        + ('equal' if worst < 0.005 else f'differ by up to {worst:.2f} points '
           'from') + f' `{c["against"]}`')
  if checks:
    lines.append('- Cross-check of the classification numbers (kNN, probe) '
                 'against the training run\'s own evaluation of the same '
                 'protocol: ' + '; '.join(checks) + '.')
  skipped = {k: v for r in rows for k, v in r.get('skipped', {}).items()}
  for k, v in skipped.items():
    lines.append(f'- Skipped {k}: {v}')
  lines += ['- Records (results, config, step, commit, command per encoder): '
            '`runs/*.json` beside this file; `--collect_only` re-renders '
            'this table from them alone.', '']
  text = '\n'.join(lines)
  with open(os.path.join(out, 'results.md'), 'w') as f:
    f.write(text)
  return text


TABLE = '_table.json'  # The rendered table's rows and command.


def build(args):
  """Evaluates (unless args.collect_only) and renders; returns the markdown."""
  global ARGS
  ARGS = args
  record_dir = ARGS.records or os.path.join(ARGS.out, 'runs')
  table_path = os.path.join(record_dir, TABLE)
  if ARGS.collect_only:
    names = [v.split('=', 1)[0].strip() for v in ARGS.runs]
    cmd = command()
    if os.path.isfile(table_path):  # The last table (again).
      with open(table_path) as f:
        table = json.load(f)
      if not names or names == table['runs']:
        names, cmd = table['runs'], table['command']
    rows = load_records(record_dir, names)
  else:
    runs = parse_runs(ARGS.runs)
    if not runs:
      raise UserError('Pass --runs=NAME=WORKDIR,... (e.g. PS_s2=runs/seeds/s2/'
                      'semantic,PA_s1=runs/seeds/s1/augmented).')
    evaluate_all(runs, record_dir)
    rows = load_records(record_dir, [n for n, _ in runs])
    cmd = command()
    with open(table_path, 'w') as f:
      json.dump({'runs': [n for n, _ in runs], 'command': cmd}, f, indent=1)
      f.write('\n')
  return render(rows, ARGS.out, cmd)


def main(argv):
  del argv
  print(build(flags.FLAGS))


if __name__ == '__main__':
  _define_flags()
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
