r"""python launch/compare_methods.py --workdir=runs/compare_methods --out=docs/compare_methods

Every method × {semantic pairs, augmented pairs} at the CPU scale of
``launch/compare_pairs.py``, plus the supervised baseline.

The pairs are the same matched sets (``build_pairs``: all Tiny-ImageNet
classes, 100 images each, ``--match=images``), and every run has the same
network (ResNet-18, CIFAR stem, width 1/4), resolution (32-px views cut from
the 64-px images), batch (128),
number of steps (``--epochs`` over the 20k pairs) and seed. What differs is the
method and its own settings from ``configs/<method>_{sp,pa}.py`` — loss, heads,
EMA/queue/centre, augmentation preset, initialisation (unless ``--init`` names
one for all runs) and optimizer (unless ``--optimizer`` does). Two exceptions
at this scale: SimCLR takes the SGD recipe and PyTorch init calibrated against
the lightly peer (``cpu_scale.SIMCLR_RECIPE``), so its two runs are
``launch/compare_pairs.py``'s two arms; BYOL and DINO, whose LARS collapses
here, take the same SGD (``cpu_scale.CPU_OPTIMIZERS``). The other methods keep
their own init because BYOL collapsed fastest from PyTorch's (BENCHMARKS.md).
The supervised baseline trains on the augmented set (each image once per
epoch) with its labels.

The table starts with a floor for each layer initialisation the runs use:
the untrained encoder (``train.evaluate_init``, SimCLR's network and seed).
At the end every encoder is evaluated (kNN k = 20/200 and the linear probe on
CIFAR-10 test and Tiny-ImageNet val). Writes ``<out>/results.md``,
``results.csv`` and ``bars.png``. Resumable: finished runs are skipped, killed
ones resume; ``--methods`` picks a subset, ``--collect_only`` only rebuilds the
tables from what is there.

The table takes about 8 hours of two CPU cores, longer than a working session
whose ``runs/`` may not survive it, so each finished run also leaves a small
record, ``<out>/runs/<name>.json`` (its results, wall time, monitor curve every
10 steps, config, the SHA-256 of its pair file and the commit it ran at), which
is meant to be committed. A run with a record counts as done even when its
workdir is gone, and the tables are built from the records. A record whose
config or pair file differs from the run this invocation would train is
refused with the differing keys: delete it (or use another ``--out``) to train
that run again.
"""

import csv
import json
import math
import os
import sys
import time

from absl import flags
from absl import logging

import importlib

from configs import common
from launch import cpu_scale
from launch import records
from ssl_pairs import checkpoint
from ssl_pairs import train
from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data import sources
from ssl_pairs.errors import UserError
from ssl_pairs.metrics import format_seconds, read_jsonl
# pylint: enable=g-import-not-at-top,wrong-import-position

METHODS = ('simclr', 'mocov2', 'byol', 'dino', 'vicreg', 'barlow', 'pirl')
PAIRS = (('semantic', 'sp'), ('augmented', 'pa'))

_WORKDIR = flags.DEFINE_string('workdir', 'runs/compare_methods',
                               'Runs go here.')
_OUT = flags.DEFINE_string(
    'out', '', 'Tables and plot (default: docs/compare_methods for the default '
    '--workdir, else <workdir>/report).')
_METHODS = flags.DEFINE_list('methods', list(METHODS) + ['supervised'],
                             'Methods to run (and the supervised baseline).')
_DATASET = flags.DEFINE_string('dataset', 'tiny_imagenet',
                               'Pretraining dataset (labelled).')
_PAIRS_PER_CLASS = flags.DEFINE_integer('pairs_per_class', 100, 'P.')
_EPOCHS = flags.DEFINE_float('epochs', 8.0, 'Pretraining epochs (every run).')
_BATCH = flags.DEFINE_integer('batch_size', 128, 'Pairs per step.')
_ARCH = flags.DEFINE_string('arch', 'resnet18', 'Backbone.')
_WIDTH = flags.DEFINE_float('width', 0.25, 'ResNet width multiplier.')
_SIZE = flags.DEFINE_integer('image_size', 32, 'Pretraining resolution.')
_OPTIMIZER = flags.DEFINE_enum(
    'optimizer', 'method', ['method', 'sgd', 'lars', 'adamw'],
    '"method": each method\'s own optimizer and learning rate; otherwise this '
    'optimizer for every run (with --base_lr and --weight_decay).')
_LR = flags.DEFINE_float('base_lr', 0.12, 'Base lr (× B/256) with --optimizer.')
_WD = flags.DEFINE_float('weight_decay', 5e-4, 'Weight decay with --optimizer.')
_SEED = flags.DEFINE_integer('seed', 0, 'Training seed (same for every run).')
_INIT = flags.DEFINE_enum(
    'init', 'method', ['method', 'default', 'pytorch'],
    '"method": SimCLR PyTorch\'s layer initialisation (its CPU recipe, '
    'compare_pairs\' default), every other method its config\'s; otherwise '
    'this model.init for every run (ResNets only; ViTs keep their own).')
_LOAD_SIZE = flags.DEFINE_integer(
    'load_size', -1, 'data.load_size: -1 = cut the views from the stored '
    '(64-px) images, as compare_pairs does; 0 = resize to --image_size first.')
_EVAL_DATASETS = flags.DEFINE_string('eval_datasets', 'cifar10,tiny_imagenet',
                                     'Comma list (see config.eval.datasets).')
_EVAL_TRAIN_LIMIT = flags.DEFINE_integer(
    'eval_train_limit', 0, 'Cap on probe/kNN training images (0 = all).')
_PAIR_KINDS = flags.DEFINE_list(
    'pairs', [kind for kind, _ in PAIRS],
    'Pair sources to run for each method (semantic, augmented); e.g. '
    '--pairs=augmented trains only the PA arms. The tables collect the '
    'planned runs only, so rebuild them with every source (--collect_only).')
_COLLECT_ONLY = flags.DEFINE_bool(
    'collect_only', False, 'Only rebuild the tables and plot from --workdir.')


def runs(methods, kinds=None):
  """(run name, method, pair kind) of every run, in order, for the pair
  sources ``kinds`` (default: both); the run name is also the config
  module's."""
  kinds = [kind for kind, _ in PAIRS] if kinds is None else kinds
  out = []
  for method in methods:
    if method == 'supervised':
      out.append(('supervised', 'supervised', 'augmented'))
      continue
    if method not in METHODS:
      raise UserError(f'Unknown method {method!r} in --methods; choose from '
                      f'{", ".join(METHODS + ("supervised",))}.')
    unknown = set(kinds) - {kind for kind, _ in PAIRS}
    if unknown:
      raise UserError(f'Unknown pair source {sorted(unknown)[0]!r} in '
                      '--pairs; choose from semantic, augmented.')
    for kind, suffix in PAIRS:
      if kind not in kinds:
        continue
      out.append((f'{method}_{suffix}', method, kind))
  return out


def run_config(name, pair_file):
  """One run's config: the method's runlocal config at the shared CPU scale."""
  c = importlib.import_module(f'configs.{name}').get_config('runlocal')
  c.name = f'compare_methods-{name}'
  c.data.dataset = _DATASET.value
  c.data.pairs = 'pair_file'
  c.data.pair_file = pair_file
  cpu_scale.apply(c, arch=_ARCH.value, width=_WIDTH.value,
                  image_size=_SIZE.value, batch_size=_BATCH.value,
                  epochs=_EPOCHS.value, seed=_SEED.value,
                  eval_datasets=_EVAL_DATASETS.value,
                  eval_train_limit=_EVAL_TRAIN_LIMIT.value)
  if _OPTIMIZER.value != 'method':
    c.optim.name = _OPTIMIZER.value
    c.optim.base_lr = _LR.value
    c.optim.weight_decay = _WD.value
    c.optim.warmup_epochs = min(1.0, _EPOCHS.value / 4)
  else:  # The method's CPU recipe (SimCLR's: compare_pairs' two arms).
    cpu_scale.apply_cpu_recipe(c)
  c.data.load_size = _LOAD_SIZE.value
  if _ARCH.value.startswith('vit'):
    c.model.init = 'default'  # ViTs initialise as their paper does.
  elif _INIT.value != 'method':
    c.model.init = _INIT.value
  common.round_queue(c)
  return c


BASELINE = 'random init'


def make_record(run_dir, name, method, kind, record_dir, commit):
  """compare_methods' record of a finished run: the shared record plus its
  method and pair source."""
  return records.make_record(
      run_dir, name, record_dir, commit, allow_no_steps=method == BASELINE,
      extra={'method': method,
             'pairs': 'labels' if method == 'supervised' else kind})


load_record, write_record, record_path = (records.load_record,
                                          records.write_record,
                                          records.record_path)
check_record, file_sha256, _commit = (records.check_record,
                                      records.file_sha256, records.commit)


def baselines(planned):
  """(name, 'random init', '<init> init') for each layer initialisation the
  planned runs start from: the untrained encoder, evaluated as the floor."""
  inits = sorted({run_config(n, '').model.init for n, m, _ in planned
                  if m != BASELINE})
  return [(f'random_init_{i}', BASELINE, f'{i} init') for i in inits]


def config_of(name, method, kind, pair_files):
  """The config of a planned entry (a baseline is SimCLR's network, with
  its init, evaluated before any step)."""
  if method != BASELINE:
    return run_config(name, pair_files[kind])
  c = run_config('simclr_sp', pair_files['semantic'])
  c.name = f'compare_methods-{name}'
  c.model.init = kind.split()[0]
  return c


def collect(planned, record_dir):
  """{run name: record} for every run of ``planned`` that has a record."""
  results = {}
  for name, _, _ in planned:
    record = load_record(record_dir, name)
    if record is not None:
      results[name] = record
  return results


# A run whose CIFAR-10 probe is less than this many points above its own
# untrained encoder's (same init) is marked "did not learn".
LEARNT_MARGIN = 3.0


def gain_cell(r, results) -> str:
  """'+g.gg' (CIFAR-10 probe minus its untrained encoder's), marked 'did not
  learn' under LEARNT_MARGIN; '–' for a floor or a run without its floor."""
  floor = results.get(f'random_init_{r["config"]["model"]["init"]}')
  if r['method'] == BASELINE or floor is None:
    return '–'
  gain = (r['results'].get('cifar10', {}).get('probe', math.nan) -
          floor['results'].get('cifar10', {}).get('probe', math.nan))
  return f'{gain:+.2f}' + (' did not learn' if not gain >= LEARNT_MARGIN
                           else '')


COLUMNS = (('cifar10', 'probe'), ('cifar10', 'knn@200'),
           ('tiny_imagenet', 'probe'), ('tiny_imagenet', 'knn@200'))


def settings_of_runs() -> str:
  """The optimizer and init clause of the settings line."""
  if _OPTIMIZER.value == 'method':
    optimizer = ('each method\'s own optimizer, except SGD for simclr '
                 '(compare_pairs\' recipe) and for '
                 f'{", ".join(sorted(cpu_scale.CPU_OPTIMIZERS))} '
                 '(cpu_scale.CPU_OPTIMIZERS)')
  else:
    optimizer = f'{_OPTIMIZER.value} for every run'
  if _INIT.value == 'method':
    init = 'each method\'s own init (SimCLR: model.init=pytorch)'
  else:
    init = f'model.init={_INIT.value}'
  return f'{optimizer}, {init}'


def _span(pair, digits):
  """'first → last', or '–' for a run without training steps."""
  if pair[0] is None:
    return '–'
  return f'{pair[0]:.{digits}f} → {pair[1]:.{digits}f}'


def write_outputs(results, out_dir, argv, planned_names=()):
  """results.csv, results.md, bars.png and rank.png in ``out_dir``."""
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, 'results.csv'), 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['method', 'pairs', 'dataset', 'metric', 'top1',
                'train_seconds'])
    for r in results.values():
      for dataset, metrics in r['results'].items():
        for metric in ('probe', 'knn@20', 'knn@200'):
          if metric in metrics:
            w.writerow([r['method'], r['pairs'], dataset, metric,
                        metrics[metric], round(r['train_seconds'], 1)])
  lines = [
      '# Every method on semantic vs augmented pairs at CPU scale', '',
      f'Command: `{" ".join(["python launch/compare_methods.py", argv]).strip()}`',
      '',
      f'Settings: {_DATASET.value} train pairs (all classes × '
      f'{_PAIRS_PER_CLASS.value} images, matched), {_ARCH.value} width '
      f'{_WIDTH.value:g}, {_SIZE.value} px, batch {_BATCH.value}, '
      f'{_EPOCHS.value:g} epochs, seed {_SEED.value}, {settings_of_runs()}, '
      f'data.load_size={_LOAD_SIZE.value}. Top-1 % of the frozen encoder. '
      'Gain: CIFAR-10 probe minus that of the same network untrained (its '
      f'init\'s random-init row); under +{LEARNT_MARGIN:g} points a run is '
      'marked "did not learn".', '',
      '| method | pairs | ' + ' | '.join(f'{d} {m}' for d, m in COLUMNS) +
      ' | gain | loss first → last | effective rank first → last | '
      'train wall time |',
      '|---|---|' + '---|' * (len(COLUMNS) + 4)]
  for r in results.values():
    cells = [f'{r["results"].get(d, {}).get(m, float("nan")):.2f}'
             for d, m in COLUMNS]
    wall = format_seconds(r['train_seconds'])
    lines.append(
        f'| {r["method"]} | {r["pairs"]} | ' + ' | '.join(cells) +
        f' | {gain_cell(r, results)} | {_span(r["loss"], 3)} | {_span(r["rank"], 1)} | '
        f'{"–" if r["method"] == BASELINE else wall} |')
  missing = [n for n in planned_names if n not in results]
  if missing:
    lines += ['', f'Not trained yet ({len(missing)} of {len(planned_names)} '
              f'runs): {", ".join(missing)}. The same command trains them; '
              'the rows above are read from the records in [runs/](runs).']
  lines += ['', '![CIFAR-10 probe per method](bars.png)', '',
            'Collapse monitor: effective rank over training (every 10 '
            'steps, from the records) of the batch embedding the loss sees, '
            'whose width differs by method (a projection, an expander or '
            'DINO\'s prototype logits), so compare within a method.', '',
            '![Effective rank per run](rank.png)', '']
  with open(os.path.join(out_dir, 'results.md'), 'w') as f:
    f.write('\n'.join(lines))
  if results:
    plot_bars(results, os.path.join(out_dir, 'bars.png'))
    plot_rank(results, os.path.join(out_dir, 'rank.png'))


def plot_rank(results, path):
  """Effective rank against step, one line per run (solid PS, dashed PA)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(7.5, 4.2))
  colours = {}
  for r in results.values():
    curve = r.get('curve', {})
    if 'embed_rank' not in curve:
      continue
    colour = colours.setdefault(r['method'], f'C{len(colours) % 10}')
    style = {'semantic': '-', 'augmented': '--'}.get(r['pairs'], ':')
    ax.plot(curve['step'], curve['embed_rank'], style, color=colour,
            label=f'{r["method"]} {r["pairs"]}', linewidth=1.2)
  ax.set_xlabel('step')
  ax.set_yscale('log')
  ax.legend(fontsize=7, ncol=3)
  cpu_scale.finish_figure(fig, ax, path, 'effective rank of the embedding',
                          legend=False)


def plot_bars(results, path):
  """CIFAR-10 probe per method: semantic vs augmented bars side by side."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  methods = list(dict.fromkeys(r['method'] for r in results.values()
                               if r['method'] != BASELINE))
  fig, ax = plt.subplots(figsize=(1.2 * len(methods) + 2, 3.6))
  for offset, pairs in ((-0.2, 'semantic'), (0.2, 'augmented'),
                        (0.0, 'labels')):
    xs, ys = [], []
    for i, method in enumerate(methods):
      for r in results.values():
        if r['method'] == method and r['pairs'] == pairs:
          xs.append(i + offset)
          ys.append(r['results'].get('cifar10', {}).get('probe', 0.0))
    if xs:
      ax.bar(xs, ys, width=0.4, label=pairs)
  for i, r in enumerate(r for r in results.values()
                       if r['method'] == BASELINE):
    ax.axhline(r['results'].get('cifar10', {}).get('probe', 0.0),
               color='k', linestyle=(':', '--')[i % 2], linewidth=1,
               label=f'random init ({r["pairs"]})')
  ax.set_xticks(range(len(methods)), methods)
  top = max((r['results'].get('cifar10', {}).get('probe', 0.0)
             for r in results.values()), default=0.0)
  ax.set_ylim(0, max(top, 1.0) * 1.35)  # Room for the legend above the bars.
  ax.legend(fontsize=8, ncol=2, loc='upper left')
  cpu_scale.finish_figure(fig, ax, path, 'CIFAR-10 linear probe top-1 %',
                          legend=False)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  workdir = os.path.abspath(_WORKDIR.value)
  t0 = time.time()
  planned = runs(_METHODS.value, _PAIR_KINDS.value)
  planned = baselines(planned) + planned
  pairs_dir = os.path.join(workdir, 'pairs')
  out = cpu_scale.out_dir(_OUT.value, _WORKDIR, 'docs/compare_methods')
  record_dir = os.path.join(out, 'runs')
  commit = _commit()  # The code these runs train with.
  source = sources.load_split(_DATASET.value, 'train',
                              sources.resolve_data_dir(''), None)
  summary = pairs_lib.build_matched_sets(
      source, 'all', _PAIRS_PER_CLASS.value, 'images', 0, pairs_dir)
  for i, (name, method, kind) in enumerate(planned):
    run_dir = os.path.join(workdir, name)
    config = config_of(name, method, kind, summary['files'])
    pair_file = config.data.pair_file
    finished = os.path.exists(os.path.join(run_dir, 'eval.json'))
    if finished:
      record = make_record(run_dir, name, method, kind, record_dir, commit)
    else:
      record = load_record(record_dir, name)
    if record is not None:
      # Checked before it is written: a stale workdir never replaces a
      # committed record.
      check_record(record, config.to_dict(), pair_file)
      if finished:
        write_record(record, record_dir)
    if _COLLECT_ONLY.value:
      continue
    if record is not None:
      print(f'[{i + 1}/{len(planned)}] {name}: done (record '
            f'{record_path(record_dir, name)}), skipped.')
      continue
    if method == BASELINE:
      print(f'[{i + 1}/{len(planned)}] === {name}: the untrained encoder ===')
      train.evaluate_init(config, run_dir)
    else:
      print(f'[{i + 1}/{len(planned)}] === {name} ({kind} pairs) ===')
      train.run(config, run_dir)
    write_record(make_record(run_dir, name, method, kind, record_dir, commit),
                 record_dir)
  # Every record was checked against this invocation's settings, so its
  # flags (less --collect_only) describe the whole table.
  command = ' '.join(a for a in sys.argv[1:]
                     if not a.startswith(('--collect_only', '--nocollect_only')))
  results = collect(planned, record_dir)
  write_outputs(results, out, command, [n for n, _, _ in planned])
  print(f'Done in {format_seconds(time.time() - t0)}; {len(results)} of '
        f'{len(planned)} runs collected; see '
        f'{os.path.join(out, "results.md")}')


if __name__ == '__main__':
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
