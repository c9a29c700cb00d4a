"""The central comparison: SimCLR on semantic pairs (PS) vs augmented pairs
(PA) at CPU scale, with learning curves (``launch/compare_pairs.py``).

1. The matched sets come from the pretraining data's labels
   (``build_matched_sets``: all 200 Tiny-ImageNet classes, 100 images each,
   matched by images: PS pairs up the same 20k images PA uses) — the pair
   files of ``methods``, whose SimCLR runs these two arms are (same configs:
   ``configs/simclr.py`` at ``scale=cpu``: ResNet-18 CIFAR stem width 1/4,
   32-px views cut from the 64-px images, batch 128, SGD, τ 0.5, PyTorch
   init).
2. Every ``--eval_every`` epochs from epoch 0 (the random-init encoder) the
   frozen encoder is evaluated by kNN and the linear probe on CIFAR-10 test
   (transfer; probe trained on CIFAR-10 train) and Tiny-ImageNet val (probe
   trained on Tiny-ImageNet train). No evaluation-set label reaches
   pretraining: PS uses Tiny-ImageNet *train* labels to form pairs, which is
   the point of semantic pairs.
3. The recipe flags (``--optimizer --base_lr --weight_decay --init
   --temperature --jitter_strength --warmup_epochs --proj_hidden_dim
   --bn_per_view``) change both arms, for the recipe studies of
   docs/results/compare_pairs.md.

``make`` builds the study for another horizon (``horizon``: 48 epochs,
evaluated every 8).
"""

import math

from launch import studies as s
from launch.studies import methods
from launch.studies import plots
from ssl_pairs.metrics import format_seconds

ARMS = (('semantic', 'sp'), ('augmented', 'pa'))
CURVE = (('cifar10', 'probe'), ('cifar10', 'knn@20'), ('cifar10', 'knn@200'),
         ('tiny_imagenet', 'probe'), ('tiny_imagenet', 'knn@20'),
         ('tiny_imagenet', 'knn@200'))
METRICS = ('probe', 'knn@20', 'knn@200')
# Peer calibration (lightly 1.6 / PyTorch, ResNet-18 width 16, batch 128, 8
# epochs of the 20k Tiny-ImageNet images at 32 px; docs/results/
# compare_pairs.md).
CALIBRATION = {
    'lightly peer, augmented': {'cifar10 probe': 46.1,
                                'cifar10 knn@200': 39.1,
                                'tiny_imagenet probe': 8.8},
    'lightly peer, semantic': {'cifar10 probe': 42.0, 'cifar10 knn@200': 38.6,
                               'tiny_imagenet probe': 5.7},
    'lightly peer, random init': {'cifar10 probe': 32.8,
                                  'cifar10 knn@200': 27.1},
}

# Recipe flags over both arms; the "keep" value leaves the config's setting.
SIMCLR_FLAGS = {
    'temperature': s.Flag('float', -1.0, 'NT-Xent τ (-1: the config\'s, 0.5).'),
    'jitter_strength': s.Flag(
        'float', -1.0, 'Colour-jitter strength s: brightness/contrast/'
        'saturation 0.8·s, hue 0.2·s (-1: the config\'s, 0.5 as lightly\'s '
        'CIFAR-10 benchmark).'),
    'warmup_epochs': s.Flag('float', -1.0,
                            'Linear warm-up epochs (-1: the recipe\'s).'),
    'proj_hidden_dim': s.Flag('integer', 0, 'Projection head hidden width '
                              '(0: the config\'s, 2048).'),
    'bn_per_view': s.Flag(
        'bool', False, 'One encoder pass per view (own BatchNorm '
        'statistics), as lightly does.'),
}


def _flags(every: float):
  return {**methods.RECIPE_FLAGS, **SIMCLR_FLAGS,
          'eval_every': s.Flag('float', every, 'Epochs between curve points '
                               '(0: only the final evaluation).')}


RUNS = s.product(s.sweep('method', ['simclr']),
                 s.sweep('pairs', [a for a, _ in ARMS],
                         names=[n for _, n in ARMS]))


def config(run, ctx):
  """compare_methods' SimCLR run of this arm, the recipe flags over it."""
  c = methods.config(run, ctx)
  c.eval.every_epochs = ctx.eval_every
  if ctx.temperature >= 0:
    c.method.temperature = ctx.temperature
  if ctx.jitter_strength >= 0:
    c.augment.jitter_strength = ctx.jitter_strength
  if ctx.warmup_epochs >= 0:
    c.optim.warmup_epochs = ctx.warmup_epochs
  if ctx.proj_hidden_dim > 0:
    c.method.proj_hidden_dim = ctx.proj_hidden_dim
  if ctx.bn_per_view:
    c.method.bn_per_view = True
  return c


def labels(run, ctx):
  return {'method': run['method'], 'pairs': run['pairs'], 'seed': ctx.seed}


def curve_points(r, dataset, metric):
  """[(epoch, top-1 %)] of a record's evaluation curve (which ends with the
  final evaluation); a run without a curve: its final evaluation alone."""
  curve = r.get('eval_curve') or [
      {'epoch': r['config']['epochs'], 'results': r['results']}]
  points = {round(p['epoch'], 3): p['results'].get(dataset, {}).get(metric)
            for p in curve}
  return sorted((e, v) for e, v in points.items() if v is not None)


def _at(r, dataset, metric, epoch):
  for e, v in curve_points(r, dataset, metric):
    if math.isclose(e, epoch):
      return v
  return None


def _cell(value, digits=2, sign=False):
  return '–' if value is None else f'{value:{"+" if sign else ""}.{digits}f}'


def _curve_keys(results, metrics=METRICS):
  """(dataset, metric) of the collected records' evaluations, in order."""
  keys = {}
  for r in results.values():
    for dataset, values in r['results'].items():
      for metric in metrics:
        if metric in values:
          keys[(dataset, metric)] = None
  return list(keys)


def _by_pairs(results):
  return {r['pairs']: r for r in results.values()}


def curve_lines(results, ctx):
  """Every arm's curve: one row per (arm, epoch); epoch 0 is the untrained
  encoder (both arms start from it: same network and seed)."""
  del ctx
  keys = _curve_keys(results)
  head = [f'{d} {m}' for d, m in keys]
  lines = ['| pairs | epoch | ' + ' | '.join(head) + ' |',
           '|---|---|' + '---|' * len(head)]
  for r in results.values():
    epochs = [e for e, _ in curve_points(r, *keys[0])]
    for e in epochs:
      cells = [_cell(_at(r, d, m, e)) for d, m in keys]
      lines.append(f'| {r["pairs"]} | {e:g} | ' + ' | '.join(cells) + ' |')
  return lines


def gap_lines(results, ctx):
  """PS − PA at each epoch both arms were evaluated at."""
  del ctx
  arms = _by_pairs(results)
  if not {'semantic', 'augmented'} <= set(arms):
    return []
  ps, pa = arms['semantic'], arms['augmented']
  keys = _curve_keys(results, ('probe', 'knn@200'))
  epochs = sorted({e for e, _ in curve_points(ps, *keys[0])} &
                  {e for e, _ in curve_points(pa, *keys[0])})
  head = [f'{d} {m}' for d, m in keys]
  lines = ['| epoch | ' + ' | '.join(head) + ' |',
           '|---|' + '---|' * len(head)]
  for e in epochs:
    cells = []
    for d, m in keys:
      a, b = _at(ps, d, m, e), _at(pa, d, m, e)
      cells.append(_cell(None if a is None or b is None else a - b,
                         sign=True))
    lines.append(f'| {e:g} | ' + ' | '.join(cells) + ' |')
  return lines


def curve_csv():
  def rows(r):
    for dataset, metric in _curve_keys({r['name']: r}):
      for epoch, value in curve_points(r, dataset, metric):
        yield [r['pairs'], r['seed'], epoch, dataset, metric, value]
  return s.Csv(['pairs', 'seed', 'epoch', 'dataset', 'metric', 'top1'], rows)


def draw_curves(results, path):
  """One panel per (dataset, probe | kNN@200): each arm against epoch."""
  plt = plots.pyplot()
  panels = _curve_keys(results, ('probe', 'knn@200'))
  fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4),
                           squeeze=False)
  axes = axes[0]
  styles = {'semantic': ('C0', 's--'), 'augmented': ('C1', 'o-')}
  for ax, (dataset, metric) in zip(axes, panels):
    for r in results.values():
      points = curve_points(r, dataset, metric)
      if points:
        colour, style = styles.get(r['pairs'], ('C2', ':'))
        ax.plot(*zip(*points), style, color=colour,
                label=f'{r["pairs"]} pairs', markersize=4)
    ax.set_title(f'{dataset}: {metric}', fontsize=10)
    ax.set_xlabel('pretraining epoch')
    ax.set_ylabel('top-1 %')
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def settings(ctx) -> str:
  recipe = ('SimCLR\'s CPU recipe (SGD lr 0.06 × B/256, weight decay 5e-4, '
            'no warm-up, τ 0.5, jitter 0.5, PyTorch init)'
            if ctx.optimizer == 'method' else
            f'{ctx.optimizer} base lr {ctx.base_lr} (× B/256), weight decay '
            f'{ctx.weight_decay}')
  changed = [f'{name}={ctx.values[name]}' for name in SIMCLR_FLAGS
             if ctx.values[name] != SIMCLR_FLAGS[name].default]
  if ctx.init != 'method':
    changed.append(f'model.init={ctx.init}')
  return (
      f'Settings: {ctx.dataset} train, all classes × {ctx.pairs_per_class} '
      f'images matched (PS pairs up the images PA uses), {ctx.arch} width '
      f'{ctx.width:g} (CIFAR stem), {ctx.image_size} px, batch '
      f'{ctx.batch_size}, {ctx.epochs:g} epochs (cosine over all of them), '
      f'seed {ctx.seed}, {recipe}'
      + (f', changed: {", ".join(changed)}' if changed else '')
      + ', views cut from '
      + ('the stored images' if ctx.load_size == -1 else
         f'{ctx.load_size or ctx.image_size}-px images')
      + f'; evaluated every {ctx.eval_every:g} epochs from epoch 0 (the '
      f'untrained encoder) on {ctx.eval_datasets.replace(",", ", ")} '
      '(CIFAR-10 test, Tiny-ImageNet val; the probe and kNN fitted on the '
      'train split of the same dataset); kNN k=20/200 τ 0.07, L-BFGS '
      'softmax probe with λ chosen on 10 % of train. '
      'Top-1 %.')


def make(name, doc, title, *, epochs, every, workdir, out, command=''):
  """The PS-vs-PA study at ``epochs``, evaluated every ``every`` epochs."""
  return s.Study(
      name=name, doc=doc, runs=RUNS, config=config, setup=methods.setup,
      labels=labels,
      table=s.Table(
          title=title,
          settings=settings,
          columns=[
              s.label('pairs'),
              *(s.metric(d, m) for d, m in CURVE),
              s.Column('loss first → last',
                       lambda r, _: methods.span(r['loss'], 3)),
              s.Column('effective rank first → last',
                       lambda r, _: methods.span(r['rank'], 1)),
              s.Column('train wall time',
                       lambda r, _: format_seconds(r['train_seconds']))],
          reference_rows=CALIBRATION,
          sections=[
              s.Section('PS − PA by epoch (points)', gap_lines),
              s.Section('Learning curve (top-1 %; epoch 0 is the untrained '
                        'encoder)', curve_lines)],
          csv=curve_csv()),
      plots=[s.Plot('curve.png', 'learning curves', draw_curves)],
      scales={'cpu': dict(methods.CPU, epochs=epochs)}, flags=_flags(every),
      workdir=workdir, out=out, command=command)


STUDY = make('pairs', 'SimCLR PS vs PA with learning curves (CPU scale)',
             '# Semantic vs augmented pairs at CPU scale (SimCLR)',
             epochs=8.0, every=2.0, workdir='runs/compare_pairs',
             out='docs/compare_pairs',
             command='python launch/compare_pairs.py')
