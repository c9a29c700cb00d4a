r"""python launch/compare_mined.py --workdir=runs/compare_mined --out=docs/compare_mined

Mined positives without labels at CPU scale on CIFAR-10 (GPS-SSL's and SPPS's
setting), every run evaluated by kNN and the linear probe on CIFAR-10 test:

* ``<m>-weak``: plain two-view ``m`` with weak augmentation (flip only);
* ``<m>-strong``: plain two-view ``m`` with its strong preset;
* ``<m>-gps-<prior>``: GPS-``m`` with weak augmentation, partners from the k
  nearest neighbours in a prior: ``pixels`` (16 px), ``autoencoder`` (trained
  here) or ``checkpoint`` (the ``simclr-strong`` run's encoder, so that run
  goes first);
* ``simclr-spps``: SPPS-SimCLR (strong augmentation plus semantic positive
  sets from the ``simclr-strong`` encoder; δ = the median cosine similarity of
  each image's nearest neighbour in that embedding, at most 2 positives).

for m in ``--methods`` (simclr, byol). Same network (ResNet-18, CIFAR stem,
width 1/4), 32 px, batch 128, ``--epochs`` over the 50k images, seed. The
table reports each miner's pair precision (share of mined positives with the
anchor's label — measured, never used). Resumable like the other launchers.
"""

import csv
import json
import os
import time

from absl import flags

import numpy as np

from configs import common
from launch import cpu_scale
from ssl_pairs import train
from ssl_pairs.errors import UserError
from ssl_pairs.metrics import format_seconds, read_jsonl
# pylint: enable=g-import-not-at-top,wrong-import-position

PRIORS = ('pixels', 'autoencoder', 'checkpoint')
# Published reference points (docs/pair_sources.md).
PAPER = ('GPS-SSL (CIFAR-10, weak augmentation, ResNet-18, full training): '
         'GPS-SimCLR 85.58 % vs SimCLR 37.51 %; SPPS: about +4 points over '
         'SimCLR (ImageNet, 800 epochs).')

_WORKDIR = flags.DEFINE_string('workdir', 'runs/compare_mined', 'Runs.')
_OUT = flags.DEFINE_string(
    'out', '', 'Tables and plot (default: docs/compare_mined for the default '
    '--workdir, else <workdir>/report).')
_METHODS = flags.DEFINE_list('methods', ['simclr', 'byol'], 'simclr, byol.')
_PRIORS = flags.DEFINE_list('priors', list(PRIORS), 'GPS priors to run.')
_SPPS = flags.DEFINE_bool('spps', True, 'Run SPPS-SimCLR.')
_DATASET = flags.DEFINE_string('dataset', 'cifar10', 'Pretraining data.')
_EPOCHS = flags.DEFINE_float('epochs', 2.0, 'Pretraining epochs (every run).')
_BATCH = flags.DEFINE_integer('batch_size', 128, 'Pairs per step.')
_ARCH = flags.DEFINE_string('arch', 'resnet18', 'Backbone.')
_WIDTH = flags.DEFINE_float('width', 0.25, 'ResNet width multiplier.')
_SIZE = flags.DEFINE_integer('image_size', 32, 'Pretraining resolution.')
_K = flags.DEFINE_integer('k', 4, 'GPS neighbours per image.')
_SEED = flags.DEFINE_integer('seed', 0, 'Training seed.')
_EVAL_DATASETS = flags.DEFINE_string('eval_datasets', 'cifar10',
                                     'Evaluation datasets.')
_EVAL_TRAIN_LIMIT = flags.DEFINE_integer('eval_train_limit', 0,
                                         'Cap on probe/kNN train images.')
_COLLECT_ONLY = flags.DEFINE_bool('collect_only', False,
                                  'Only rebuild the tables from --workdir.')


def planned_runs():
  """(name, method, kind, prior) in dependency order."""
  for method in _METHODS.value:
    if method not in ('simclr', 'byol'):
      raise UserError(f'--methods takes simclr and/or byol, not {method!r}.')
  for prior in _PRIORS.value:
    if prior not in PRIORS:
      raise UserError(f'Unknown --priors entry {prior!r}; choose from '
                      f'{", ".join(PRIORS)}.')
  out = []
  if 'checkpoint' in _PRIORS.value or _SPPS.value:
    out.append(('simclr-strong', 'simclr', 'strong', ''))  # The prior.
  for method in _METHODS.value:
    for kind in ('strong', 'weak'):
      if (f'{method}-{kind}', method, kind, '') not in out:
        out.append((f'{method}-{kind}', method, kind, ''))
    for prior in _PRIORS.value:
      out.append((f'{method}-gps-{prior}', method, 'gps', prior))
  if _SPPS.value:
    out.append(('simclr-spps', 'simclr', 'spps', 'checkpoint'))
  return out


def _median_nn_similarity(workdir_prior, config, run_dir):
  """δ for SPPS: median cosine similarity of each image's nearest neighbour.

  The prior embedding is cached in the SPPS run's workdir, where the run
  itself then reads it instead of extracting the features a second time."""
  from ssl_pairs.mining import neighbours  # pylint: disable=g-import-not-at-top
  from ssl_pairs.data import sources  # pylint: disable=g-import-not-at-top
  from ssl_pairs.mining import priors  # pylint: disable=g-import-not-at-top
  src = sources.load_split(config.data.dataset, 'train',
                           sources.resolve_data_dir(''),
                           config.data.image_size)
  x = priors.cached_prior(f'checkpoint:{workdir_prior}', src,
                          config.data.spps, config.model,
                          config.data.pair_seed, run_dir)
  _, sims = neighbours.nearest_neighbours(x, 1, 'cosine')
  return float(np.median(sims[:, 0]))


def run_config(name, method, kind, prior, workdir):
  """One run's config at the shared CPU scale."""
  source = {'strong': 'gps', 'weak': 'gps', 'gps': 'gps', 'spps': 'spps'}[kind]
  arg = 'runlocal' + (',aug=weak' if kind in ('weak', 'gps') else '')
  c = common.mined_config(method, source, f'{method}_{source}', arg)
  c.name = f'compare_mined-{name}'
  if kind in ('strong', 'weak'):
    c.data.pairs = 'augmented'
    c.data.pair_transform = 'none'  # Plain two-view training.
  c.data.dataset = _DATASET.value
  cpu_scale.apply(c, arch=_ARCH.value, width=_WIDTH.value,
                  image_size=_SIZE.value, batch_size=_BATCH.value,
                  epochs=_EPOCHS.value, seed=_SEED.value,
                  eval_datasets=_EVAL_DATASETS.value,
                  eval_train_limit=_EVAL_TRAIN_LIMIT.value)
  c.optim.warmup_epochs = min(1.0, _EPOCHS.value / 4)
  c.data.gps.k = _K.value
  anchor_run = os.path.join(workdir, 'simclr-strong')
  if kind == 'gps':
    c.data.gps.prior = (f'checkpoint:{anchor_run}' if prior == 'checkpoint'
                        else prior)
  if kind == 'spps':
    c.data.spps.prior = f'checkpoint:{anchor_run}'
    c.data.spps.threshold = round(_median_nn_similarity(
        anchor_run, c, os.path.join(workdir, name)), 4)
  return c


def collect(workdir, planned):
  results = {}
  for name, method, kind, prior in planned:
    run_dir = os.path.join(workdir, name)
    if not os.path.exists(os.path.join(run_dir, 'eval.json')):
      continue
    with open(os.path.join(run_dir, 'eval.json')) as f:
      report = json.load(f)
    stats = {}
    if os.path.exists(os.path.join(run_dir, 'pair_stats.json')):
      with open(os.path.join(run_dir, 'pair_stats.json')) as f:
        stats = json.load(f)
    with open(os.path.join(run_dir, 'config.json')) as f:
      config = json.load(f)
    steps = read_jsonl(os.path.join(run_dir, 'metrics.jsonl'))
    results[name] = {
        'method': method, 'kind': kind, 'prior': prior,
        'augment': config['data']['augment']['preset'],
        # CIFAR-10 test, or the first evaluation set when that is another.
        'results': report['results'].get(
            'cifar10', next(iter(report['results'].values()), {})),
        'train_seconds': report['train_seconds'], 'stats': stats,
        'threshold': (config['data']['spps']['threshold']
                      if kind == 'spps' else None),
        'loss': (steps[0]['loss'], steps[-1]['loss'])}
  return results


def write_outputs(results, out_dir, argv):
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, 'results.csv'), 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['run', 'method', 'pairs', 'prior', 'augment', 'metric',
                'top1', 'pair_precision', 'train_seconds'])
    for name, r in results.items():
      for metric in ('probe', 'knn@20', 'knn@200'):
        w.writerow([name, r['method'], r['kind'], r['prior'], r['augment'],
                    metric, r['results'].get(metric, float('nan')),
                    r['stats'].get('pair_precision', ''),
                    round(r['train_seconds'], 1)])
  lines = [
      '# Mined positives (GPS-SSL, SPPS) vs plain two-view training, CPU '
      'scale', '', f'Command: `python launch/compare_mined.py {argv}`', '',
      f'Settings: {_DATASET.value} train (50k images), {_ARCH.value} width '
      f'{_WIDTH.value:g}, {_SIZE.value} px, batch {_BATCH.value}, '
      f'{_EPOCHS.value:g} epochs, GPS k={_K.value}, seed {_SEED.value}; '
      'CIFAR-10 test top-1 % of the frozen encoder (probe: L-BFGS softmax; '
      'kNN k=200).', '',
      '| run | method | positives | augmentation | pair precision | probe | '
      'kNN@200 | loss first → last | train time |',
      '|---|---|---|---|---|---|---|---|---|']
  for name, r in results.items():
    positives = {'strong': 'two views', 'weak': 'two views',
                 'gps': f'GPS k-NN ({r["prior"]} prior)',
                 'spps': f'two views + SPPS set (δ={r["threshold"]})'}[
                     r['kind']]
    precision = r['stats'].get('pair_precision')
    extra = ''
    if r['kind'] == 'spps':
      extra = (f'; mean set {r["stats"]["mean_set_size"]:.2f}, '
               f'{100 * r["stats"]["empty_fraction"]:.0f} % empty')
    lines.append(
        f'| {name} | {r["method"]} | {positives} | {r["augment"]} | '
        + (f'{100 * precision:.1f} %{extra}' if precision is not None
           else '—') +
        f' | {r["results"].get("probe", float("nan")):.2f} | '
        f'{r["results"].get("knn@200", float("nan")):.2f} | '
        f'{r["loss"][0]:.3f} → {r["loss"][1]:.3f} | '
        f'{format_seconds(r["train_seconds"])} |')
  lines += ['', f'Reference: {PAPER}', '', '![CIFAR-10 probe](bars.png)', '']
  with open(os.path.join(out_dir, 'results.md'), 'w') as f:
    f.write('\n'.join(lines))
  plot(results, os.path.join(out_dir, 'bars.png'))


def plot(results, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  names = list(results)
  fig, ax = plt.subplots(figsize=(0.9 * len(names) + 2, 3.8))
  for offset, metric in ((-0.2, 'probe'), (0.2, 'knn@200')):
    ax.bar([i + offset for i in range(len(names))],
           [results[n]['results'].get(metric, 0.0) for n in names],
           width=0.4, label=metric)
  ax.set_xticks(range(len(names)), names, rotation=30, ha='right')
  top = max([results[n]['results'].get(m, 0.0) for n in names
             for m in ('probe', 'knn@200')] + [1.0])
  ax.set_ylim(0, 1.25 * top)  # Headroom so the legend covers no bar.
  cpu_scale.finish_figure(fig, ax, path, 'CIFAR-10 top-1 %')


def main(argv):
  del argv
  workdir = os.path.abspath(_WORKDIR.value)
  t0 = time.time()
  planned = planned_runs()
  if not _COLLECT_ONLY.value:
    for i, (name, method, kind, prior) in enumerate(planned):
      if os.path.exists(os.path.join(workdir, name, 'eval.json')):
        print(f'[{i + 1}/{len(planned)}] {name}: done, skipped.')
        continue
      print(f'[{i + 1}/{len(planned)}] === {name} ===', flush=True)
      train.run(run_config(name, method, kind, prior, workdir),
                os.path.join(workdir, name))
  command = cpu_scale.record_command(workdir, not _COLLECT_ONLY.value)
  results = collect(workdir, planned)
  out = cpu_scale.out_dir(_OUT.value, _WORKDIR, 'docs/compare_mined')
  write_outputs(results, out, command)
  print(f'Done in {format_seconds(time.time() - t0)}; {len(results)} of '
        f'{len(planned)} runs; see {os.path.join(out, "results.md")}')


if __name__ == '__main__':
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
