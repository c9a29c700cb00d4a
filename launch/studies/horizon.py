"""Does the semantic-pair gap close with training? SimCLR PS vs PA for 48
epochs (6x compare_methods' budget, its cosine schedule over all 48), the
frozen encoder evaluated every 8 epochs from epoch 0 (issue 24's long curve).

The two arms are compare_methods' SimCLR runs (same configs, pair files,
recipe) with ``--epochs=48`` and ``eval.every_epochs=8``: each takes about
2.5 h on 2 CPU cores and resumes exactly when killed; a finished arm leaves
its record (with its learning curve) in ``docs/results/horizon/runs``.
"""

import math

from launch import studies as s
from launch.studies import methods
from launch.studies import plots
from ssl_pairs.metrics import format_seconds

EVERY = 8.0
CPU = dict(methods.CPU, epochs=48.0)

RUNS = s.product(
    s.sweep('method', ['simclr']),
    s.sweep('pairs', ['semantic', 'augmented'], names=['sp', 'pa']),
    s.sweep('config.eval.every_epochs', [EVERY], names=['']))

CURVE_METRICS = (('cifar10', 'probe'), ('cifar10', 'knn@200'),
                 ('tiny_imagenet', 'probe'))


def labels(run, ctx):
  del ctx
  return {'method': run['method'], 'pairs': run['pairs']}


def curve_points(r, dataset, metric):
  """[(epoch, top-1 %)] of a record's evaluation curve (the final
  evaluation included once, at the run's last epoch)."""
  points = {round(p['epoch'], 3): p['results'].get(dataset, {}).get(metric)
            for p in r.get('eval_curve', [])}
  final = r['results'].get(dataset, {}).get(metric)
  if final is not None:
    points[round(r['config']['train']['epochs'], 3)] = final
  return sorted((e, v) for e, v in points.items() if v is not None)


def epochs_of(results):
  return sorted({e for r in results.values()
                 for e, _ in curve_points(r, 'cifar10', 'probe')})


def _at(r, dataset, metric, epoch):
  for e, v in curve_points(r, dataset, metric):
    if math.isclose(e, epoch):
      return v
  return math.nan


def curve_columns(epochs=range(0, 49, 8)):
  return [s.Column(f'cifar10 probe @{e}', lambda r, _, e=e: (
      f'{_at(r, "cifar10", "probe", e):.2f}')) for e in epochs]


def curve_csv():
  def rows(r):
    for dataset, metric in CURVE_METRICS:
      for epoch, value in curve_points(r, dataset, metric):
        yield [r['method'], r['pairs'], epoch, dataset, metric, value]
  return s.Csv(['method', 'pairs', 'epoch', 'dataset', 'metric', 'top1'],
               rows)


def settings(ctx) -> str:
  return (f'Settings: compare_methods\' SimCLR arms ({ctx.dataset} train, all '
          f'classes x {ctx.pairs_per_class} matched images, {ctx.arch} width '
          f'{ctx.width:g}, {ctx.image_size} px, batch {ctx.batch_size}, SGD '
          'lr 0.06 x B/256, tau 0.5, PyTorch init) for '
          f'{ctx.epochs:g} epochs (cosine over all of them), seed {ctx.seed}; '
          f'the frozen encoder evaluated every {EVERY:g} epochs from epoch 0 '
          '(CIFAR-10 test: probe trained on CIFAR-10 train; Tiny-ImageNet '
          'val: probe trained on Tiny-ImageNet train). Top-1 %.')


def draw_curves(results, path):
  plt = plots.pyplot()
  fig, axes = plt.subplots(1, len(CURVE_METRICS), figsize=(12, 3.6))
  styles = {'semantic': ('C0', '-o'), 'augmented': ('C1', '--s')}
  for ax, (dataset, metric) in zip(axes, CURVE_METRICS):
    for r in results.values():
      points = curve_points(r, dataset, metric)
      if points:
        colour, style = styles.get(r['pairs'], ('C2', ':'))
        ax.plot(*zip(*points), style, color=colour, label=r['pairs'],
                markersize=4)
    ax.set_title(f'{dataset} {metric}', fontsize=9)
    ax.set_xlabel('epoch')
    ax.grid(alpha=0.3)
  axes[0].set_ylabel('top-1 %')
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


STUDY = s.Study(
    name='horizon',
    doc='SimCLR PS vs PA for 48 epochs, evaluated every 8 (the long curve)',
    runs=RUNS, config=methods.config, setup=methods.setup, labels=labels,
    table=s.Table(
        title='# Semantic vs augmented pairs over 48 epochs (SimCLR, CPU '
        'scale)',
        settings=settings,
        columns=[s.label('pairs'), *curve_columns(),
                 s.metric('cifar10', 'knn@200'),
                 s.metric('tiny_imagenet', 'probe'),
                 s.Column('train wall time', lambda r, _: (
                     format_seconds(r['train_seconds'])))],
        csv=curve_csv()),
    plots=[s.Plot('curve.png', 'PS and PA over 48 epochs', draw_curves)],
    scales={'cpu': CPU}, flags=methods.RECIPE_FLAGS,
    workdir='runs/horizon', out='docs/results/horizon')

