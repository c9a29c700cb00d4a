r"""Seeds of the PS-vs-PA comparison: mean ± sd per arm, paired differences.

  python launch/seeds_report.py \
      --records=docs/compare_methods/runs/simclr_sp.json,docs/compare_methods/runs/simclr_pa.json,docs/results/pairs_seeds/runs \
      --out=docs/results/pairs_seeds

Reads committed run records (files, or folders of them: see
``launch/records.py``) of SimCLR on semantic (PS) and augmented (PA) pairs
that differ only in their training seed, and writes ``results.md``,
``results.csv`` and ``seeds.png`` (each arm's mean with ± one sd bars and
every seed's point) to ``--out``. For each metric: per-seed values, mean ±
sample sd (n − 1) per arm, the paired difference PS − PA per seed (same seed:
same initialisation and draws), their mean ± sd, and whether the paired
differences agree in sign — the only case in which a direction is claimed.

Records of other settings than the first one's (any config key but the
seed, run name, pair-file path and evaluation cadence), or of other pairs
(pair-file hash), are refused: a seed study compares seeds, nothing else.
"""

import csv
import glob
import json
import math
import os
import statistics

from absl import flags

from launch import cpu_scale
from launch import records
from ssl_pairs import checkpoint
from ssl_pairs.errors import UserError

FLAGS = flags.FLAGS


def _define_flags():
  """The program's flags (defined when run, so tests can import it)."""
  flags.DEFINE_list('records', None,
                    'Record files or folders of records (*.json).')
  flags.DEFINE_string('out', 'docs/results/pairs_seeds',
                      'Where results.md/.csv and seeds.png go.')

ARMS = ('semantic', 'augmented')
METRICS = (('cifar10', 'probe'), ('cifar10', 'knn@200'),
           ('tiny_imagenet', 'probe'), ('tiny_imagenet', 'knn@200'))
# What may differ between the seeds of one study: what a record check ignores,
# the seed and the learning-curve cadence.
SEED_KEYS = records.RECORD_IGNORED + ('seed', 'eval.every_epochs')


def load(paths):
  """The records named by ``paths`` (files or folders), in name order."""
  files = []
  for path in paths:
    files += (sorted(glob.glob(os.path.join(path, '*.json')))
              if os.path.isdir(path) else [path])
  records = []
  for path in files:
    with open(path) as f:
      record = json.load(f)
    if record.get('pairs') in ARMS and 'results' in record:
      record['_path'] = path
      records.append(record)
  return records


def check_same_study(records):
  """Refuses records that differ in more than their seed."""
  if not records:
    raise UserError('No PS or PA records found in --records; pass record '
                    'files or the folders that hold them.')
  first = records[0]
  for r in records[1:]:
    unsafe, safe = checkpoint.config_differences(first['config'], r['config'])
    differ = sorted(k for k in unsafe + safe if k not in SEED_KEYS
                    and k != 'data.pairs')
    if differ:
      a, b = checkpoint.flatten(first['config']), checkpoint.flatten(
          r['config'])
      shown = ', '.join(f'{k} ({a.get(k)!r} vs {b.get(k)!r})'
                        for k in differ[:4])
      raise UserError(
          f'{r["_path"]} differs from {first["_path"]} in more than the seed '
          f'({shown}); a seed study compares seeds only.')
  for arm in ARMS:
    hashes = {r['pair_file_sha256'] for r in records if r['pairs'] == arm}
    if len(hashes) > 1:
      raise UserError(f'The {arm} records were trained on {len(hashes)} '
                      'different pair files; a seed study keeps the pairs.')
  seen = {}
  for r in records:
    key = (r['pairs'], r['config']['seed'])
    if key in seen:
      raise UserError(f'{r["_path"]} and {seen[key]} are both the {key[0]} '
                      f'arm with seed {key[1]}; pass one of them.')
    seen[key] = r['_path']


def value(record, dataset, metric):
  return record['results'].get(dataset, {}).get(metric, math.nan)


def mean_sd(values):
  """(mean, sample sd; nan for one value)."""
  values = list(values)
  if not values:
    return math.nan, math.nan
  sd = statistics.stdev(values) if len(values) > 1 else math.nan
  return statistics.fmean(values), sd


def summarize(records):
  """{(dataset, metric): {'seeds': {arm: {seed: v}}, arm: (mean, sd),
  'diff': {seed: PS − PA}, 'diff_stats': (mean, sd), 'sign': text}}."""
  out = {}
  for dataset, metric in METRICS:
    by_arm = {arm: {r['config']['seed']: value(r, dataset, metric)
                    for r in records if r['pairs'] == arm} for arm in ARMS}
    paired = sorted(set(by_arm['semantic']) & set(by_arm['augmented']))
    diff = {s: by_arm['semantic'][s] - by_arm['augmented'][s] for s in paired}
    signs = {math.copysign(1, d) for d in diff.values() if d != 0}
    if len(diff) < 2:
      sign = f'{len(diff)} paired seed(s): no direction claimed'
    elif len(signs) == 1 and len(diff) == len(
        [d for d in diff.values() if d != 0]):
      sign = (f'PS {"above" if signs == {1.0} else "below"} PA in all '
              f'{len(diff)} paired seeds')
    else:
      sign = f'signs disagree over {len(diff)} paired seeds: no direction'
    out[(dataset, metric)] = dict(
        seeds=by_arm, diff=diff, diff_stats=mean_sd(diff.values()),
        sign=sign, **{arm: mean_sd(by_arm[arm].values()) for arm in ARMS})
  return out


def _pm(mean, sd):
  if math.isnan(mean):
    return '–'
  return f'{mean:.2f}' + ('' if math.isnan(sd) else f' ± {sd:.2f}')


def write(records, summary, out_dir, command):
  os.makedirs(out_dir, exist_ok=True)
  seeds = sorted({r['config']['seed'] for r in records})
  with open(os.path.join(out_dir, 'results.csv'), 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['dataset', 'metric', 'arm', 'seed', 'top1'])
    for (dataset, metric), s in summary.items():
      for arm in ARMS:
        for seed, v in sorted(s['seeds'][arm].items()):
          w.writerow([dataset, metric, arm, seed, round(v, 4)])
      for seed, d in sorted(s['diff'].items()):
        w.writerow([dataset, metric, 'PS-PA', seed, round(d, 4)])
  first = records[0]['config']
  lines = [
      '# Semantic vs augmented pairs over training seeds', '',
      f'Command: `{command}`', '',
      f'Runs: SimCLR, {first["data"]["dataset"]} pairs (the same pair files '
      f'for every seed), {first["model"]["arch"]} width '
      f'{first["model"]["width_multiplier"]:g}, {first["data"]["image_size"]}'
      f' px, batch {first["batch_size"]}, {first["epochs"]:g} epochs; the '
      'records differ only in the training seed (checked). Top-1 % of the '
      'frozen encoder; mean ± sample sd over seeds; PS − PA paired by '
      'seed.', '',
      '| metric | ' + ' | '.join(f'PS s{s}' for s in seeds) + ' | PS mean ± sd'
      ' | ' + ' | '.join(f'PA s{s}' for s in seeds) + ' | PA mean ± sd | '
      'PS − PA per seed | PS − PA mean ± sd | direction |',
      '|---|' + '---|' * (2 * len(seeds) + 5)]
  for (dataset, metric), s in summary.items():
    cells = [f'{dataset} {metric}']
    for arm in ARMS:
      cells += [f'{s["seeds"][arm][k]:.2f}' if k in s['seeds'][arm] else '–'
                for k in seeds]
      cells.append(_pm(*s[arm]))
    cells.append(', '.join(f'{d:+.2f}' for _, d in sorted(s['diff'].items()))
                 or '–')
    cells += [_pm(*s['diff_stats']), s['sign']]
    lines.append('| ' + ' | '.join(cells) + ' |')
  lines += ['', 'Records: ' + ', '.join(
      f'`{os.path.relpath(r["_path"], out_dir)}` ({r["pairs"]}, seed '
      f'{r["config"]["seed"]}, commit {r.get("commit", "?")})'
      for r in records) + '.', '', '![seeds](seeds.png)', '']
  with open(os.path.join(out_dir, 'results.md'), 'w') as f:
    f.write('\n'.join(lines))
  plot(summary, os.path.join(out_dir, 'seeds.png'))


def plot(summary, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(7, 3.6))
  for j, arm in enumerate(ARMS):
    for i, key in enumerate(summary):
      s = summary[key]
      x = i + (j - 0.5) * 0.36
      mean, sd = s[arm]
      ax.bar(x, mean, width=0.34, color=f'C{j}',
             yerr=None if math.isnan(sd) else sd, capsize=4,
             label=arm if i == 0 else None)
      points = list(s['seeds'][arm].values())
      ax.plot([x] * len(points), points, 'k.', markersize=4)
  ax.set_xticks(range(len(summary)), [f'{d}\n{m}' for d, m in summary],
                fontsize=8)
  cpu_scale.finish_figure(fig, ax, path, 'top-1 % (mean ± sd; dots: seeds)')


def main(argv):
  del argv
  if not FLAGS.records:
    raise UserError('Pass --records=<record files or folders>.')
  records = load(FLAGS.records)
  check_same_study(records)
  records.sort(key=lambda r: (ARMS.index(r['pairs']), r['config']['seed']))
  summary = summarize(records)
  command = 'python launch/seeds_report.py --records=' + ','.join(
      FLAGS.records) + f' --out={FLAGS.out}'
  write(records, summary, FLAGS.out, command)
  for (dataset, metric), s in summary.items():
    print(f'{dataset} {metric}: PS {_pm(*s["semantic"])}, PA '
          f'{_pm(*s["augmented"])}, PS − PA {_pm(*s["diff_stats"])} '
          f'({s["sign"]})')
  print(f'See {os.path.join(FLAGS.out, "results.md")}')


if __name__ == '__main__':
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  _define_flags()
  cli.run(main)
