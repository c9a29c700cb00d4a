r"""python launch/reproduce.py --table=main --scale=cpu

Reproduces one of the study's tables: runs what is missing (resumable —
finished runs are skipped, killed ones resume), then writes
``<out>/<table>.md``, ``<table>.csv`` and ``<table>.png`` with the papers'
numbers (docs/reproducing.md) beside ours. ``--dry_run`` lists the runs and their
estimated time (building the pair files it needs to count them). See docs/reading_tables.md for how to read each one.

Tables (every run trains with the same scale and seed; one run can serve
several tables — e.g. the PS run of ``main`` is the 'full' row of
``transforms`` — and is trained once):

* ``main`` — SimCLR on semantic pairs (PS), augmented pairs (PA) and on all
  the images of the dataset (the paper's Tiny-ImageNet comparison);
* ``methods`` — SimCLR, BYOL, VICReg and DINO (the paper's four), PS vs PA;
* ``transforms`` — PS and PA with the full view pipeline, without grayscale,
  and crop only (the paper's transform ablation);
* ``data_scale`` — PS and PA with ``--data_scale`` images per class;
* ``crop_scale`` — PA at minimum crop scale 0.08 / 0.2 / 0.5 with each
  encoder's occlusion invariance (Top-K RIS);
* ``bias`` — PA on full images vs on object crops (each image cut to its
  Tiny-ImageNet box): the object-centric-bias study, with invariances;
* ``invariance`` — Top-K RIS of the PS, PA and all-images encoders for every
  transformation set;
* ``efficiency`` — wall-clock training time per run of ``main`` (the paper:
  4.5 h on semantic pairs vs 13 h on Tiny-ImageNet).

Scales: ``cpu`` fits a 2-core machine — ResNet-18 (CIFAR stem, width 1/4),
32-px views cut from the 64-px images, batch 128, 8 epochs, 50 images per
class of the 200 Tiny-ImageNet classes, the SGD recipe of
``launch/compare_pairs.py`` for SimCLR (with PyTorch's layer initialisation,
``model.init=pytorch``), the same SGD for BYOL and DINO (their LARS collapses
at this scale; ``cpu_scale.CPU_OPTIMIZERS``) and each other method's own
optimizer and init;
``paper`` is the paper's setting for GPUs — ResNet-50 (``--arch=vit_small``
for ViT-S/8) at 64 px, batch 256, 200 epochs, 157 images per class (full
Tiny-ImageNet or an ImageNet folder with ``--dataset``), each method's own
(LARS) optimizer and warm-up. Any scale field can be overridden by its flag.
"""

import csv
import dataclasses
import importlib
import json
import math
import os
import time
from typing import Dict, List, Tuple

from absl import flags

from configs import common
from launch import cpu_scale
from ssl_pairs.errors import UserError
from ssl_pairs.metrics import format_seconds, read_jsonl
# pylint: enable=g-import-not-at-top,wrong-import-position

TABLES = ('main', 'methods', 'transforms', 'data_scale', 'crop_scale', 'bias',
          'invariance', 'efficiency')

SCALES = {
    'cpu': dict(dataset='tiny_imagenet', arch='resnet18', width=0.25,
                image_size=32, load_size=-1, batch_size=128, epochs=8.0,
                images_per_class=50, data_scale=(15, 50, 100),
                eval_datasets='cifar10,tiny_imagenet', recipe='cpu',
                step_seconds=1.2),
    'paper': dict(dataset='tiny_imagenet', arch='resnet50', width=1.0,
                  image_size=64, load_size=0, batch_size=256, epochs=200.0,
                  images_per_class=157, data_scale=(50, 157),
                  eval_datasets='cifar10,cifar100?,stl10?,tiny_imagenet',
                  recipe='paper', step_seconds=float('nan')),
}

# The papers' numbers (docs/reproducing.md): CIFAR-10 / CIFAR-100 / STL-10 linear
# probe, ResNet-50 (SimCLR) unless noted.
PAPER = {
    'main': {'semantic': 'C10 83.60 / C100 59.58 / STL 85.59',
             'augmented': 'C10 82.8 / C100 58.7 / STL 81.8 (PS − 0.8/0.9/3.8)',
             'all': 'Tiny-ImageNet (100k images): C10 79.43 / STL 79.61'},
    'methods': {'simclr': 'PS − PA: +0.8 / +0.9 / +3.8 (contrastive gains most)',
                'dino': 'ViT-S/8 PS 81.8/65.3/82.1 vs PA 81.1/64.5/79.2'},
    'transforms': {'no grayscale': 'removing grayscale costs PA 9.69 points, '
                                   'PS almost nothing',
                   'crop only': 'crop only: PA 24.25 vs PS 64.23'},
    'data_scale': {'50': 'PS advantage +4.20 at 50 images/class',
                   '157': 'PS advantage +3.83 at 157 images/class'},
    'crop_scale': {'': 'Purushwalkam & Gupta: aggressive cropping is what '
                       'buys occlusion invariance'},
    'bias': {'': 'Purushwalkam & Gupta: object-centric (ImageNet) '
                 'pretraining gains occlusion, loses viewpoint/instance'},
    'efficiency': {'semantic': '4.5 h (paper, GPU)',
                   'all': '13 h on Tiny-ImageNet (paper, GPU)'},
}

_TABLE = flags.DEFINE_list('table', ['main'], f'One or more of {TABLES}.')
_SCALE = flags.DEFINE_enum('scale', 'cpu', list(SCALES), 'Preset scale.')
_WORKDIR = flags.DEFINE_string('workdir', '', 'Runs (default runs/reproduce/'
                               '<scale>).')
_OUT = flags.DEFINE_string('out', '', 'Tables (default docs/reproduce/<scale>).')
_DRY_RUN = flags.DEFINE_bool('dry_run', False,
                             'List the runs and their estimated time only.')
_COLLECT_ONLY = flags.DEFINE_bool('collect_only', False,
                                  'Only rebuild the tables from --workdir.')
_ONLY = flags.DEFINE_list('only', [], 'Train only these runs (names as '
                          '--dry_run lists them); tables wait for the rest.')
_CHECK_STEP = flags.DEFINE_bool(
    'check_step', False, 'Train one step at batch 2 of every planned run\'s '
    'config (full shape) in a temporary folder, then stop: checks a scale '
    'before a long job.')
_SEED = flags.DEFINE_integer('seed', 0, 'Training seed (every run).')
_INVARIANCE_N = flags.DEFINE_integer('invariance_n', 200,
                                     'Objects per invariance set builder.')
_VIDEOS = flags.DEFINE_list(
    'videos', ['video_bikes.npz', 'video_carphone_pristine.npz'],
    'Videos for the viewpoint and instance + viewpoint invariances (the latter '
    'needs two or more; [] to skip).')
# Scale overrides (empty / negative = the scale's value).
_DATASET = flags.DEFINE_string('dataset', '', 'Pretraining dataset.')
_ARCH = flags.DEFINE_string('arch', '', 'Backbone.')
_WIDTH = flags.DEFINE_float('width', -1, 'ResNet width (ViT: patch size).')
_SIZE = flags.DEFINE_integer('image_size', -1, 'Pretraining resolution.')
_LOAD_SIZE = flags.DEFINE_integer('load_size', -2, 'data.load_size.')
_BATCH = flags.DEFINE_integer('batch_size', -1, 'Pairs per step.')
_EPOCHS = flags.DEFINE_float('epochs', -1, 'Pretraining epochs.')
_IMAGES = flags.DEFINE_integer('images_per_class', -1,
                               'Images (= pairs) per class of PS and PA.')
_DATA_SCALE = flags.DEFINE_list('data_scale', [],
                                'Images per class of the data_scale table.')
_EVAL_DATASETS = flags.DEFINE_string('eval_datasets', '', 'Evaluation sets.')
_EVAL_TRAIN_LIMIT = flags.DEFINE_integer('eval_train_limit', 0,
                                         'Cap on probe/kNN train images.')
_STEP_SECONDS = flags.DEFINE_float('step_seconds', -1,
                                   'Seconds per step for --dry_run estimates.')


def scale() -> Dict:
  """The scale's settings with the flags' overrides."""
  s = dict(SCALES[_SCALE.value])
  for key, flag, unset in (
      ('dataset', _DATASET, ''), ('arch', _ARCH, ''), ('width', _WIDTH, -1),
      ('image_size', _SIZE, -1), ('load_size', _LOAD_SIZE, -2),
      ('batch_size', _BATCH, -1), ('epochs', _EPOCHS, -1),
      ('images_per_class', _IMAGES, -1), ('eval_datasets', _EVAL_DATASETS, ''),
      ('step_seconds', _STEP_SECONDS, -1)):
    if flag.value != unset:
      s[key] = flag.value
  if _DATA_SCALE.value:
    s['data_scale'] = tuple(int(v) for v in _DATA_SCALE.value)
  if s['arch'].startswith('vit') and _WIDTH.value == -1:
    s['width'] = 8  # ViT-S/8, the paper's; --width sets the patch.
  return s


def check_workdir(workdir: str, s) -> None:
  """Refuses a workdir whose runs were trained at another scale or seed
  (run folders are named by what differs between rows, not by the scale)."""
  fingerprint = {k: v for k, v in s.items() if k not in (
      'data_scale', 'step_seconds', 'eval_datasets')}
  fingerprint = json.loads(json.dumps(dict(fingerprint, seed=_SEED.value)))
  path = os.path.join(workdir, 'scale.json')
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    if saved != fingerprint:
      diff = ', '.join(f'{k}: {saved.get(k)} → {v}' for k, v in
                       fingerprint.items() if saved.get(k) != v)
      raise UserError(f'{workdir} holds runs trained with other settings '
                      f'({diff}); give this scale its own --workdir.')
  else:
    os.makedirs(workdir, exist_ok=True)
    with open(path, 'w') as f:
      json.dump(fingerprint, f, indent=1)


@dataclasses.dataclass(frozen=True)
class Run:
  """One pretraining run; ``name`` is its folder, shared by every table."""
  method: str = 'simclr'
  pairs: str = 'semantic'          # semantic | augmented | all
  images_per_class: int = 0        # 0: the scale's.
  drop: str = ''
  crop_min_scale: float = 0.08
  object_crops: bool = False

  def name(self, s) -> str:
    p = self.images_per_class or s['images_per_class']
    parts = [self.method, self.pairs] + ([f'p{p}'] if self.pairs != 'all'
                                         else [])
    if self.drop == CROP_ONLY:
      parts.append('croponly')
    elif self.drop:
      parts.append('drop-' + self.drop.replace(',', '+'))
    if self.crop_min_scale != 0.08:
      parts.append(f'crop{self.crop_min_scale:g}')
    if self.object_crops:
      parts.append('objects')
    return '_'.join(parts)


# Crop only, for the views and for the augmented partner's pair transform.
CROP_ONLY = 'flip,rotation,color_jitter,grayscale,blur,solarize'


def table_rows(table: str, s) -> List[Tuple[Dict[str, str], Run]]:
  """(row labels, run) of a table, in display order."""
  ps, pa = Run(pairs='semantic'), Run(pairs='augmented')
  if table in ('main', 'efficiency', 'invariance'):
    return [({'pairs': 'semantic'}, ps), ({'pairs': 'augmented'}, pa),
            ({'pairs': 'all'}, Run(pairs='all'))]
  if table == 'methods':
    return [({'method': m, 'pairs': k}, Run(method=m, pairs=k))
            for m in ('simclr', 'byol', 'vicreg', 'dino')
            for k in ('semantic', 'augmented')]
  if table == 'transforms':
    return [({'views': v, 'pairs': k}, Run(pairs=k, drop=d))
            for v, d in (('full', ''), ('no grayscale', 'grayscale'),
                         ('crop only', CROP_ONLY))
            for k in ('semantic', 'augmented')]
  if table == 'data_scale':
    return [({'images/class': str(p), 'pairs': k},
             Run(pairs=k, images_per_class=0 if p == s['images_per_class']
                 else p))
            for p in s['data_scale'] for k in ('semantic', 'augmented')]
  if table == 'crop_scale':
    return [({'min crop scale': f'{c:g}'}, Run(pairs='augmented',
                                               crop_min_scale=c))
            for c in (0.08, 0.2, 0.5)]
  if table == 'bias':
    return [({'pretraining images': 'full'}, pa),
            ({'pretraining images': 'object crops'},
             Run(pairs='augmented', object_crops=True))]
  raise UserError(f'Unknown --table {table!r}; choose from '
                  f'{", ".join(TABLES)}.')


def pair_files(workdir: str, s, images_per_class: int) -> Dict[str, str]:
  """The matched PS/PA pair files for ``images_per_class`` (built once)."""
  from ssl_pairs.data import pairs as pairs_lib  # pylint: disable=g-import-not-at-top
  from ssl_pairs.data import sources  # pylint: disable=g-import-not-at-top
  dataset = os.path.basename(os.path.normpath(s['dataset']))
  out = os.path.join(workdir, 'pairs', f'{dataset}_p{images_per_class}')
  summary = os.path.join(out, 'summary.json')
  if not os.path.exists(summary):
    source = sources.load_split(s['dataset'], 'train',
                                sources.resolve_data_dir(''), None)
    pairs_lib.build_matched_sets(source, 'all', images_per_class, 'images', 0,
                                 out)
  with open(summary) as f:
    return json.load(f)['files']


def run_config(run: Run, s, workdir: str):
  """The config of one run at scale ``s``."""
  module = 'simclr_sp' if run.pairs == 'semantic' else 'simclr_pa'
  module = module.replace('simclr', run.method)
  c = importlib.import_module(f'configs.{module}').get_config(
      'runlocal' if s['recipe'] == 'cpu' else None)
  c.name = f'reproduce-{run.name(s)}'
  c.data.dataset = s['dataset']
  if run.pairs == 'all':
    c.data.pairs = 'augmented'
  else:
    files = pair_files(workdir, s, run.images_per_class or
                       s['images_per_class'])
    c.data.pairs = 'pair_file'
    c.data.pair_file = files[run.pairs]
  cpu_scale.apply(c, arch=s['arch'], width=float(s['width']),
                  image_size=s['image_size'], batch_size=s['batch_size'],
                  epochs=s['epochs'], seed=_SEED.value,
                  eval_datasets=s['eval_datasets'],
                  eval_train_limit=_EVAL_TRAIN_LIMIT.value)
  if s['arch'].startswith('vit'):
    c.model.patch_size = int(s['width'])
  c.data.load_size = s['load_size']
  c.data.augment.drop = run.drop
  c.data.augment.crop_min_scale = run.crop_min_scale
  c.data.object_crops = run.object_crops
  if s['recipe'] == 'cpu':
    cpu_scale.apply_cpu_recipe(c)  # SimCLR's: compare_pairs' recipe.
  common.round_queue(c)
  return c


def num_pairs(run: Run, s, workdir: str) -> int:
  if run.pairs == 'all':
    from ssl_pairs.data import sources  # pylint: disable=g-import-not-at-top
    return len(sources.load_split(s['dataset'], 'train',
                                  sources.resolve_data_dir(''), None))
  files = pair_files(workdir, s, run.images_per_class or s['images_per_class'])
  with open(files[run.pairs]) as f:
    return sum(1 for line in f if line.strip()) - 1  # Header.


def videos() -> List[str]:
  """--videos present in the data dir (missing ones skipped with a note)."""
  from ssl_pairs.data import sources  # pylint: disable=g-import-not-at-top
  data_dir = sources.resolve_data_dir('')
  found = []
  for v in _VIDEOS.value:
    if os.path.exists(v) or os.path.exists(os.path.join(data_dir, v)):
      found.append(v)
    else:
      print(f'Note: video {v} not found in {data_dir}; viewpoint invariance '
            'skipped for it.')
  return found


def invariance_of(run_dir: str, s) -> Dict:
  """Top-K RIS per transformation set, cached in the run's folder (and
  recomputed when the set builders' settings change)."""
  path = os.path.join(run_dir, 'invariance.json')
  from ssl_pairs.evals import invariance_report  # pylint: disable=g-import-not-at-top
  settings = {'n': _INVARIANCE_N.value, 'videos': videos(),
              'dataset': s['dataset'],
              'sets': list(invariance_report.SET_NAMES)}
  if os.path.exists(path):
    with open(path) as f:
      cached = json.load(f)
    if cached.get('settings') == settings:
      return cached['results']
  results = invariance_report.report(run_dir, s['dataset'], settings['n'],
                                     settings['videos'], seed=0)
  results = json.loads(json.dumps(results))  # Keys as read back: '10', '25'.
  with open(path, 'w') as f:
    json.dump({'settings': settings, 'results': results}, f, indent=1)
  return results


def columns(rows) -> List[Tuple[str, str]]:
  """(dataset, metric): the probe of every evaluated set, kNN of the first."""
  datasets = list(dict.fromkeys(d for r in rows for d in r['results']))
  return ([(d, 'probe') for d in datasets] +
          [(d, 'knn@200') for d in datasets[:1]])


def headline(rows) -> str:
  """The set the plots show: CIFAR-10 when evaluated, else the first."""
  datasets = list(dict.fromkeys(d for r in rows for d in r['results']))
  return 'cifar10' if 'cifar10' in datasets else datasets[0]


def table_command(table: str, argv: str) -> str:
  """The flags that rebuild ``table``: ``argv`` (the recorded training
  invocation, which may have named other tables) with ``--table`` set to this
  one and the selection-only flags dropped."""
  selection = ('--table', '--only', '--collect_only', '--nocollect_only',
               '--dry_run', '--nodry_run')
  words, out = argv.split(), []
  i = 0
  while i < len(words):
    word = words[i]
    if word.split('=')[0] in selection:
      i += 2 if word in ('--table', '--only') else 1  # "--table x" form.
      continue
    out.append(word)
    i += 1
  return ' '.join([f'--table={table}'] + out)


def collect(table: str, rows, s, workdir: str) -> List[Dict]:
  """One dict per finished row: labels, metrics, time, invariances."""
  out = []
  for labels, run in rows:
    run_dir = os.path.join(workdir, run.name(s))
    path = os.path.join(run_dir, 'eval.json')
    if not os.path.exists(path):
      continue
    with open(path) as f:
      report = json.load(f)
    steps = read_jsonl(os.path.join(run_dir, 'metrics.jsonl'))
    row = {**labels, 'run': run.name(s), 'results': report['results'],
           'train_seconds': report['train_seconds'],
           'steps': report['step'], 'loss_last': steps[-1]['loss']}
    if table in ('crop_scale', 'bias', 'invariance'):
      row['invariance'] = invariance_of(run_dir, s)
    out.append(row)
  return out


def _metric(row, dataset, metric):
  return row['results'].get(dataset, {}).get(metric, float('nan'))


def write_table(table: str, rows: List[Dict], s, out_dir: str,
                argv: str) -> str:
  """<table>.md/.csv/.png; returns the markdown."""
  os.makedirs(out_dir, exist_ok=True)
  label_keys = [k for k in rows[0] if k not in (
      'run', 'results', 'train_seconds', 'steps', 'loss_last', 'invariance')]
  cols = columns(rows)
  inv_names = []
  if any('invariance' in r for r in rows):
    inv_names = sorted({n for r in rows for n in r.get('invariance', {})})
  head = label_keys + [f'{d} {m}' for d, m in cols]
  if table == 'efficiency':
    head = label_keys + ['steps', 'train wall time', 'time ÷ semantic',
                         f'{headline(rows)} probe']
  head += [f'RIS@25 {n}' for n in inv_names]
  head += ['paper']
  base = next((r['train_seconds'] for r in rows
               if r.get('pairs') == 'semantic'), float('nan'))
  paper = PAPER.get(table, {})
  per_class = ('the images per class of each row' if table == 'data_scale'
               else f'{s["images_per_class"]} images per class')
  lines = [f'# {table} ({_SCALE.value} scale)', '',
           f'Command: `python launch/reproduce.py '
           f'{table_command(table, argv)}`', '',
           f'Settings: {s["dataset"]}, {s["arch"]} '
           f'{"patch" if s["arch"].startswith("vit") else "width"} '
           f'{s["width"]:g}, {s["image_size"]} px, batch {s["batch_size"]}, '
           f'{s["epochs"]:g} epochs, {per_class} '
           f'(PS and PA use the same images), seed {_SEED.value}. Top-1 % of '
           'the frozen encoder (linear probe; kNN k=200); RIS = Top-K '
           'Representation Invariance Score (K=25).', '',
           '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  csv_rows = []
  for r in rows:
    cells = [r[k] for k in label_keys]
    if table == 'efficiency':
      cells += [str(r['steps']), format_seconds(r['train_seconds']),
                f'{r["train_seconds"] / base:.2f}×',
                f'{_metric(r, headline(rows), "probe"):.2f}']
    else:
      cells += [f'{_metric(r, d, m):.2f}' for d, m in cols]
    cells += [f'{r["invariance"][n]["25"]:.1f}' if n in r.get('invariance', {})
              else '–' for n in inv_names]
    key = next((r[k] for k in label_keys if r[k] in paper),
               r.get('images/class', ''))
    cells.append(paper.get(key, paper.get('', '')))
    lines.append('| ' + ' | '.join(cells) + ' |')
    csv_rows.append(dict(zip(head, cells), run=r['run'],
                         train_seconds=round(r['train_seconds'], 1)))
  lines += ['', f'![{table}]({table}.png)', '']
  text = '\n'.join(lines)
  with open(os.path.join(out_dir, f'{table}.md'), 'w') as f:
    f.write(text)
  with open(os.path.join(out_dir, f'{table}.csv'), 'w', newline='') as f:
    w = csv.DictWriter(f, fieldnames=list(csv_rows[0]))
    w.writeheader()
    w.writerows(csv_rows)
  plot(table, rows, label_keys, inv_names,
       os.path.join(out_dir, f'{table}.png'))
  return text


def plot(table, rows, label_keys, inv_names, path):
  """Bars of the table's headline number per row (PNG)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  names = [' / '.join(r[k] for k in label_keys) for r in rows]
  groups = len(inv_names) if table == 'invariance' else len(rows)
  fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * groups + 1.5), 3.8))
  if table == 'efficiency':
    ax.bar(names, [r['train_seconds'] / 60 for r in rows], color='tab:gray')
    ylabel = 'training wall time (min)'
  elif table == 'invariance':
    width = 0.8 / max(1, len(rows))
    for i, r in enumerate(rows):
      ax.bar([j + i * width for j in range(len(inv_names))],
             [r['invariance'].get(n, {}).get('25', math.nan)
              for n in inv_names], width=width,
             label=names[i])
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(inv_names))],
                  [n.replace('_', '\n') for n in inv_names])
    ax.legend(loc='upper left', fontsize='small', ncol=len(rows))
    ax.set_ylim(0, 1.2 * ax.get_ylim()[1])  # Room for the legend.
    ylabel = 'Top-25 RIS'
  else:
    colours = ['tab:blue' if r.get('pairs') == 'semantic' else
               'tab:orange' if r.get('pairs') == 'augmented' else 'tab:green'
               for r in rows]
    ax.bar(names, [_metric(r, headline(rows), 'probe') for r in rows],
           color=colours)
    ylabel = f'{headline(rows)} linear probe top-1 %'
    if table in ('crop_scale', 'bias') and inv_names:
      twin = ax.twinx()
      twin.plot(names, [r['invariance'].get('occlusion', {}).get('25',
                                                                 math.nan)
                        for r in rows], 'k-o', label='occlusion RIS@25')
      twin.set_ylabel('occlusion Top-25 RIS')
      # RIS on its full 0-100 range, like the bars' accuracy: an autoscaled
      # axis would draw a one-point (noise-sized) difference as a cliff.
      twin.set_ylim(0, 100)
      twin.legend(loc='lower right')
  if table != 'invariance':
    ax.tick_params(axis='x', labelrotation=20)
  cpu_scale.finish_figure(fig, ax, path, ylabel, legend=False)


def shape(r, s, workdir) -> str:
  """What a run trains: backbone, resolution, method, optimizer, batch."""
  c = run_config(r, s, workdir)
  return (f'({c.model.arch}, {c.data.image_size} px, {c.method.name}, '
          f'{c.optim.name}, batch {c.batch_size}, {c.model.init} init)')


def check_steps(runs, s, workdir):
  """One batch-2 step of each run's config, evaluated on a few images."""
  import tempfile  # pylint: disable=g-import-not-at-top
  from ssl_pairs import train  # pylint: disable=g-import-not-at-top
  for r in runs:
    c = run_config(r, s, workdir)
    c.batch_size, c.total_steps, c.epochs = 2, 1, 0.0
    c.checkpoint_every_steps = 1
    c.eval.train_limit, c.eval.test_limit, c.eval.probe_max_iter = 40, 20, 5
    c.eval.every_epochs = 0.0
    with tempfile.TemporaryDirectory() as tmp:
      train.run(c, tmp)
      loss = read_jsonl(os.path.join(tmp, 'metrics.jsonl'))[-1]['loss']
    print(f'step OK: {r.name(s)} {shape(r, s, workdir)} loss {loss:.4f}',
          flush=True)


def main(argv):
  del argv
  s = scale()
  workdir = os.path.abspath(_WORKDIR.value or
                            os.path.join('runs', 'reproduce', _SCALE.value))
  out_dir = _OUT.value or os.path.join('docs', 'reproduce', _SCALE.value)
  tables = list(dict.fromkeys(_TABLE.value))
  check_workdir(workdir, s)
  plan = {t: table_rows(t, s) for t in tables}
  runs = list({run.name(s): run for rows in plan.values()
               for _, run in rows}.values())  # One run per folder.
  if _ONLY.value:
    unknown = set(_ONLY.value) - {r.name(s) for r in runs}
    if unknown:
      raise UserError(f'--only names {", ".join(sorted(unknown))}, which '
                      'these tables do not have; see --dry_run for names.')
    runs = [r for r in runs if r.name(s) in _ONLY.value]
  missing = [r for r in runs if not os.path.exists(  # Finished ones skip.
      os.path.join(workdir, r.name(s), 'eval.json'))]
  if _DRY_RUN.value:
    total = 0.0
    print(f'{len(runs)} run(s) for {", ".join(tables)} at {_SCALE.value} '
          f'scale; {len(missing)} still to train:')
    for r in runs:
      steps = math.ceil(s['epochs'] * num_pairs(r, s, workdir) /
                        s['batch_size'])
      est = steps * s['step_seconds'] + (240 if s['recipe'] == 'cpu' else 0)
      if r in missing:
        total += est
      print(f'  {r.name(s):36s} {steps:7d} steps  {shape(r, s, workdir)}  '
            + ('done' if r not in missing else
               f'≈ {format_seconds(est)}' if est == est else 'to run'))
    if total == total:
      print(f'Estimated time to finish: {format_seconds(total)} (at '
            f'{s["step_seconds"]} s/step plus evaluation).')
    return
  t0 = time.time()
  if _CHECK_STEP.value:
    check_steps(runs, s, workdir)
    return
  if not _COLLECT_ONLY.value:
    from ssl_pairs import train  # pylint: disable=g-import-not-at-top
    for i, r in enumerate(missing):
      print(f'[{i + 1}/{len(missing)}] === {r.name(s)} ===', flush=True)
      train.run(run_config(r, s, workdir), os.path.join(workdir, r.name(s)))
  argv = cpu_scale.record_command(workdir, not _COLLECT_ONLY.value)
  for t in tables:
    rows = collect(t, plan[t], s, workdir)
    if len(rows) < len(plan[t]):
      print(f'{t}: {len(rows)} of {len(plan[t])} runs finished; table not '
            'written (rerun without --collect_only to train the rest).')
      continue
    print(write_table(t, rows, s, out_dir, argv))
  print(f'Done in {format_seconds(time.time() - t0)}; tables in {out_dir}.')


if __name__ == '__main__':
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
