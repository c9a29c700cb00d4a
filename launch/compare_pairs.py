r"""python launch/compare_pairs.py --workdir=runs/compare_pairs --out=docs/compare_pairs

Semantic pairs (PS) vs augmented pairs (PA) at CPU scale, with learning curves.

1. ``build_pairs`` makes the matched sets from the pretraining data's labels
   (default: all 200 Tiny-ImageNet classes, 100 images each,
   ``--match=images``: PS pairs up the same 20k images PA uses).
2. SimCLR is pretrained on each set with the same steps, seed, network
   (ResNet-18 with the CIFAR stem at width 1/4), 32 px and batch 128.
3. Every ``--eval_every`` epochs (from epoch 0 = the random-init encoder) the
   frozen encoder is evaluated by kNN and the linear probe on CIFAR-10 test
   (transfer; probe trained on CIFAR-10 train) and Tiny-ImageNet val (probe
   trained on Tiny-ImageNet train). No evaluation-set label reaches
   pretraining: PS uses Tiny-ImageNet *train* labels to form pairs, which is
   the point of semantic pairs; val and CIFAR-10 labels only train probes.
4. Writes ``<out>/results.md``, ``results.csv`` and ``curve.png``.

Runs are resumable: rerunning skips finished runs and resumes killed ones.
"""

import csv
import json
import os
import time

from absl import app
from absl import flags

from configs import simclr_pa
from configs import simclr_sp
from launch import cpu_scale
from launch import records
from ssl_pairs import train
from ssl_pairs.metrics import format_seconds, read_jsonl
from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data import sources
# pylint: enable=g-import-not-at-top,wrong-import-position

_WORKDIR = flags.DEFINE_string('workdir', 'runs/compare_pairs', 'Runs go here.')
_OUT = flags.DEFINE_string(
    'out', '', 'Tables and plot (default: docs/compare_pairs for the default '
    '--workdir, else <workdir>/report).')
_DATASET = flags.DEFINE_string('dataset', 'tiny_imagenet',
                               'Pretraining dataset (labelled).')
_PAIRS_PER_CLASS = flags.DEFINE_integer('pairs_per_class', 100, 'P.')
_MATCH = flags.DEFINE_enum('match', 'images', ['pairs', 'images'],
                           'build_pairs matching (see its docstring).')
_EPOCHS = flags.DEFINE_float('epochs', 8.0, 'Pretraining epochs (both runs).')
_EVAL_EVERY = flags.DEFINE_float('eval_every', 2.0, 'Epochs between curve points.')
_BATCH = flags.DEFINE_integer('batch_size', 128, 'Pairs per step.')
_WIDTH = flags.DEFINE_float('width', 0.25, 'ResNet-18 width multiplier.')
_SIZE = flags.DEFINE_integer('image_size', 32, 'Pretraining resolution.')
# SGD, not LARS: semantic pairs give small gradients, and LARS's trust ratio
# scales the update to η·‖w‖ whatever the gradient, so weight decay dominates
# and the embeddings collapse (docs/compare_pairs_lars: effective rank 70 → 4,
# loss at chance). SGD settings are lightly's CIFAR-10 benchmark's.
_RECIPE = cpu_scale.SIMCLR_RECIPE
_OPTIMIZER = flags.DEFINE_enum('optimizer', _RECIPE['optimizer'],
                               ['sgd', 'lars', 'adamw'],
                               'Optimizer of both runs.')
_LR = flags.DEFINE_float('base_lr', _RECIPE['base_lr'],
                         'Base learning rate (× B/256).')
_WD = flags.DEFINE_float('weight_decay', _RECIPE['weight_decay'],
                         'Weight decay.')
_TEMPERATURE = flags.DEFINE_float('temperature', _RECIPE['temperature'],
                                  'NT-Xent τ.')
# Colour-jitter strength 0.5 and no warm-up are lightly's CIFAR-10 recipe (the
# peer calibration's); against strength 1.0 with 1 warm-up epoch they gave
# +2.7 / +2.0 CIFAR-10 probe points for PA / PS (BENCHMARKS.md).
_JITTER = flags.DEFINE_float(
    'jitter_strength', _RECIPE['jitter_strength'],
    'Colour-jitter strength s: brightness/contrast/saturation 0.8·s, hue '
    '0.2·s (SimCLR; lightly\'s CIFAR-10 benchmark uses 0.5).')
_WARMUP = flags.DEFINE_float(
    'warmup_epochs', _RECIPE['warmup_epochs'],
    'Linear warm-up epochs (-1: min(1, epochs / 4)).')
_PROJ_HIDDEN = flags.DEFINE_integer('proj_hidden_dim', 2048,
                                    'Projection head hidden width.')
_BN_PER_VIEW = flags.DEFINE_bool(
    'bn_per_view', False,
    'One encoder pass per view (own BatchNorm statistics), as lightly does.')
# PyTorch's layer initialisation is what the lightly peer (and its twin,
# launch/peer_lightly.py) starts from; with ssl_pairs' default init the PS arm
# stayed ~2 probe points under the peer over four seeds (BENCHMARKS.md).
_INIT = flags.DEFINE_enum(
    'init', _RECIPE['init'], ['default', 'pytorch'],
    'model.init: PyTorch\'s default layer initialisation (U(±1/√fan_in) '
    'kernels, BN scales one; what the lightly peer starts from) or '
    'ssl_pairs\' default (He fan-out, zero-initialised last BN of each '
    'block).')
_LOAD_SIZE = flags.DEFINE_integer(
    'load_size', -1, 'data.load_size: -1 = cut the views from the stored '
    '(64-px) images, as torchvision/lightly do; 0 = resize to --image_size '
    'first (see BENCHMARKS.md for both).')
_ARMS = flags.DEFINE_list('arms', 'semantic,augmented',
                          'Which arms to train (others are only collected).')
_SEED = flags.DEFINE_integer('seed', 0, 'Training seed (same for both runs).')
_EVAL_DATASETS = flags.DEFINE_string('eval_datasets', 'cifar10,tiny_imagenet',
                                     'Comma list (see config.eval.datasets).')
_EVAL_TRAIN_LIMIT = flags.DEFINE_integer(
    'eval_train_limit', 0, 'Cap on probe/kNN training images (0 = all).')
_ARCH = flags.DEFINE_string('arch', 'resnet18', 'Backbone.')
_COLLECT_ONLY = flags.DEFINE_bool(
    'collect_only', False, 'Only rebuild the tables and plot from --workdir.')

RUNS = (('semantic', simclr_sp), ('augmented', simclr_pa))
# Peer calibration (lightly 1.6 / PyTorch, ResNet-18 width 16, batch 128, 8
# epochs of the 20k Tiny-ImageNet images at 32 px; docs/results/compare_pairs.md).
CALIBRATION = {
    'augmented': {'cifar10 probe': 46.1, 'cifar10 knn@200': 39.1,
                  'tiny_imagenet probe': 8.8},
    'semantic': {'cifar10 probe': 42.0, 'cifar10 knn@200': 38.6,
                 'tiny_imagenet probe': 5.7},
    'random init': {'cifar10 probe': 32.8, 'cifar10 knn@200': 27.1},
}


def warmup_epochs() -> float:
  return min(1.0, _EPOCHS.value / 4) if _WARMUP.value < 0 else _WARMUP.value


def run_config(kind, module, pair_file):
  """The pretraining config of one arm of the comparison."""
  c = module.get_config('runlocal')
  c.name = f'compare_pairs-{kind}'
  c.data.dataset = _DATASET.value
  c.data.pairs = 'pair_file'
  c.data.pair_file = pair_file
  cpu_scale.apply(c, arch=_ARCH.value, width=_WIDTH.value,
                  image_size=_SIZE.value, batch_size=_BATCH.value,
                  epochs=_EPOCHS.value, seed=_SEED.value,
                  eval_datasets=_EVAL_DATASETS.value,
                  eval_train_limit=_EVAL_TRAIN_LIMIT.value,
                  eval_every=_EVAL_EVERY.value)
  cpu_scale.apply_simclr_recipe(
      c, optimizer=_OPTIMIZER.value, base_lr=_LR.value,
      weight_decay=_WD.value, temperature=_TEMPERATURE.value,
      jitter_strength=_JITTER.value, warmup_epochs=warmup_epochs(),
      init=_INIT.value)
  c.method.proj_hidden_dim = _PROJ_HIDDEN.value
  c.method.bn_per_view = _BN_PER_VIEW.value
  c.data.load_size = _LOAD_SIZE.value
  return c


def arm_record(kind, out_dir):
  return records.load_record(os.path.join(out_dir, 'runs'), kind)


def collect(out_dir):
  """Rows (arm, epoch, dataset, metric, value) from every arm's committed
  record, and per-arm training facts (wall time, loss and effective rank
  first → last)."""
  rows, facts = [], {}
  for kind, _ in RUNS:
    record = arm_record(kind, out_dir)
    facts[kind] = {'train_seconds': record['train_seconds'],
                   'loss': tuple(record['loss']),
                   'rank': tuple(record['rank'])}
    for point in record['eval_curve']:
      arm = 'random init' if point['step'] == 0 else kind
      if arm == 'random init' and kind != RUNS[0][0]:
        continue  # Same seed ⇒ the same initial encoder in both runs.
      for dataset, r in point['results'].items():
        for metric in ('probe', 'knn@20', 'knn@200'):
          if metric in r:
            rows.append((arm, point['epoch'], dataset, metric, r[metric]))
  return rows, facts


def write_outputs(rows, facts, out_dir, settings):
  """results.csv, results.md and curve.png in ``out_dir``."""
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, 'results.csv'), 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['pairs', 'epoch', 'dataset', 'metric', 'top1'])
    w.writerows(rows)
  datasets = sorted({r[2] for r in rows})
  metrics = ('probe', 'knn@20', 'knn@200')
  final = max(r[1] for r in rows)
  value = {(a, e, d, m): v for a, e, d, m, v in rows}
  lines = [
      '# Semantic vs augmented pairs at CPU scale', '',
      f'Command: `python launch/compare_pairs.py {settings["argv"]}`', '',
      f'Settings: {settings["text"]}', '',
      f'## Final (epoch {final:g}) top-1 %, with the random-init encoder', '',
      '| pairs | ' + ' | '.join(f'{d} {m}' for d in datasets for m in metrics)
      + ' | train wall time |',
      '|---|' + '---|' * (len(datasets) * len(metrics) + 1)]
  for arm, epoch in (('random init', 0.0), ('augmented', final),
                     ('semantic', final)):
    cells = [f'{value[(arm, epoch, d, m)]:.2f}'
             if (arm, epoch, d, m) in value else '-'
             for d in datasets for m in metrics]
    wall = format_seconds(facts[arm]['train_seconds']) if arm in facts \
        else '-'
    lines.append(f'| {arm} | ' + ' | '.join(cells) + f' | {wall} |')
  lines += ['', 'Training (collapse monitor, first → last step):', '',
            '| pairs | loss | effective rank of the batch embedding |',
            '|---|---|---|']
  for arm, f in facts.items():
    lines.append(f'| {arm} | {f["loss"][0]:.3f} → {f["loss"][1]:.3f} | '
                 f'{f["rank"][0]:.1f} → {f["rank"][1]:.1f} |')
  lines += ['', '## Peer calibration (lightly, PyTorch; the peer run is described in '
            '[docs/results/compare_pairs.md](../results/compare_pairs.md))', '',
            '| pairs | CIFAR-10 probe | CIFAR-10 kNN@200 | Tiny-ImageNet val '
            'probe |', '|---|---|---|---|']
  for arm, c in CALIBRATION.items():
    lines.append(f'| {arm} | {c.get("cifar10 probe", "-")} | '
                 f'{c.get("cifar10 knn@200", "-")} | '
                 f'{c.get("tiny_imagenet probe", "-")} |')
  lines += ['', '## Learning curve (top-1 %)', '',
            '| pairs | epoch | ' + ' | '.join(
                f'{d} {m}' for d in datasets for m in metrics) + ' |',
            '|---|---|' + '---|' * (len(datasets) * len(metrics))]
  epochs = sorted({r[1] for r in rows})
  for arm in ('augmented', 'semantic'):
    for e in epochs:
      key_arm = 'random init' if e == 0 else arm
      cells = [f'{value[(key_arm, e, d, m)]:.2f}'
               if (key_arm, e, d, m) in value else '-'
               for d in datasets for m in metrics]
      lines.append(f'| {arm} | {e:g} | ' + ' | '.join(cells) + ' |')
  lines += ['', '![learning curves](curve.png)', '']
  with open(os.path.join(out_dir, 'results.md'), 'w') as f:
    f.write('\n'.join(lines))
  plot_curves(rows, datasets, os.path.join(out_dir, 'curve.png'))


def plot_curves(rows, datasets, path):
  """One panel per (dataset, probe|kNN@200): PS and PA vs epoch."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  panels = [(d, m) for d in datasets for m in ('probe', 'knn@200')]
  fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4),
                           squeeze=False)
  for ax, (d, m) in zip(axes[0], panels):
    start = [v for a, e, dd, mm, v in rows
             if a == 'random init' and dd == d and mm == m]
    for arm, style in (('augmented', 'o-'), ('semantic', 's--')):
      pts = sorted((e, v) for a, e, dd, mm, v in rows
                   if a == arm and dd == d and mm == m)
      xs = [0.0] + [e for e, _ in pts] if start else [e for e, _ in pts]
      ys = start[:1] + [v for _, v in pts]
      ax.plot(xs, ys, style, label=f'{arm} pairs')
    ax.set_title(f'{d}: {m}')
    ax.set_xlabel('pretraining epoch')
    ax.set_ylabel('top-1 %')
    ax.grid(alpha=0.3)
  axes[0][0].legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv):
  del argv
  workdir = os.path.abspath(_WORKDIR.value)
  t0 = time.time()
  pairs_dir = os.path.join(workdir, 'pairs')
  if _COLLECT_ONLY.value:
    with open(os.path.join(pairs_dir, 'summary.json')) as f:
      summary = json.load(f)
  else:
    source = sources.load_split(_DATASET.value, 'train',
                                sources.resolve_data_dir(''), None)
    summary = pairs_lib.build_matched_sets(
        source, 'all', _PAIRS_PER_CLASS.value, _MATCH.value, 0, pairs_dir)
    print(f'Pairs: {summary["semantic"]["pairs"]} semantic / '
          f'{summary["augmented"]["pairs"]} augmented over '
          f'{len(summary["classes"])} classes.')
    unknown = set(_ARMS.value) - {kind for kind, _ in RUNS}
    if unknown:
      raise app.UsageError(f'--arms names {sorted(unknown)}; use semantic '
                           'and/or augmented.')
    out = cpu_scale.out_dir(_OUT.value, _WORKDIR, 'docs/compare_pairs')
    record_dir = os.path.join(out, 'runs')
    commit = records.commit()  # The code these runs train with.
    for kind, module in RUNS:
      if kind not in _ARMS.value:
        continue
      config = run_config(kind, module, summary['files'][kind])
      run_dir = os.path.join(workdir, kind)
      record = records.load_record(record_dir, kind)
      if record is not None:
        records.check_record(record, config.to_dict(), summary['files'][kind])
        done = records.record_path(record_dir, kind)
        print(f'=== SimCLR on {kind} pairs: done ({done}), skipped.')
        continue
      print(f'=== SimCLR on {kind} pairs ===')
      train.run(config, run_dir)
      record = records.make_record(run_dir, kind, record_dir, commit,
                                   extra={'pairs': kind, 'seed': _SEED.value})
      records.check_record(record, config.to_dict(), summary['files'][kind])
      records.write_record(record, record_dir)
  out = cpu_scale.out_dir(_OUT.value, _WORKDIR, 'docs/compare_pairs')
  missing = [kind for kind, _ in RUNS if arm_record(kind, out) is None]
  if missing:
    print(f'No tables: {", ".join(missing)} not trained yet (no record in '
          f'{os.path.join(out, "runs")}; rerun with --arms including it).')
    return
  argv = cpu_scale.record_command(workdir, not _COLLECT_ONLY.value)
  rows, facts = collect(out)
  views_from = ('the stored images' if _LOAD_SIZE.value == -1 else
                f'{_LOAD_SIZE.value or _SIZE.value}-px images')
  settings = {
      'argv': argv,
      'text': (f'{_DATASET.value} train, {summary["semantic"]["pairs"]} pairs '
               f'each (match={_MATCH.value}), {_ARCH.value} width '
               f'{_WIDTH.value} (CIFAR stem), {_SIZE.value} px, batch '
               f'{_BATCH.value}, {_EPOCHS.value:g} epochs, {_OPTIMIZER.value} '
               f'base lr {_LR.value} (× B/256), weight decay {_WD.value}, '
               f'τ {_TEMPERATURE.value}, colour jitter strength '
               f'{_JITTER.value:g}, warm-up {warmup_epochs():g} '
               f'epochs, projection hidden width {_PROJ_HIDDEN.value}, '
               f'model.init={_INIT.value}, '
               f'BatchNorm {"per view" if _BN_PER_VIEW.value else "over both views"}, '
               f'views cut from {views_from}, '
               f'seed {_SEED.value}; '
               f'evaluation on {_EVAL_DATASETS.value} '
               '(kNN k=20/200 τ 0.07; L-BFGS softmax probe, λ chosen on 10 % '
               'of train).')}
  write_outputs(rows, facts, out, settings)
  print(f'Done in {format_seconds(time.time() - t0)}; see '
        f'{os.path.join(out, "results.md")}')


if __name__ == '__main__':
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
