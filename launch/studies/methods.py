"""Every method × {semantic pairs, augmented pairs} at CPU scale, plus the
supervised baseline and the untrained floors (``launch/compare_methods.py``,
whose docstring describes the study; records and page: docs/compare_methods).
"""

import importlib
import math
import os

from configs import common
from launch import cpu_scale
from launch import studies as s
from launch.studies import plots
from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data import sources
from ssl_pairs.errors import UserError
from ssl_pairs.metrics import format_seconds

METHODS = ('simclr', 'mocov2', 'byol', 'dino', 'vicreg', 'barlow', 'pirl')
PAIRS = (('semantic', 'sp'), ('augmented', 'pa'))
BASELINE = 'random init'
# A run whose CIFAR-10 probe is less than this many points above its own
# untrained encoder's (same init) is marked "did not learn".
LEARNT_MARGIN = 3.0

# The flags run_config reads (a study that reuses it declares them too).
RECIPE_FLAGS = {
    'optimizer': s.Flag(
        'enum', 'method',
        '"method": each method\'s own optimizer and learning rate; otherwise '
        'this optimizer for every run (with --base_lr and --weight_decay).',
        ['method', 'sgd', 'lars', 'adamw']),
    'base_lr': s.Flag('float', 0.12, 'Base lr (× B/256) with --optimizer.'),
    'weight_decay': s.Flag('float', 5e-4, 'Weight decay with --optimizer.'),
    'init': s.Flag(
        'enum', 'method',
        '"method": SimCLR PyTorch\'s layer initialisation (its CPU recipe, '
        'compare_pairs\' default), every other method its config\'s; '
        'otherwise this model.init for every run (ResNets only; ViTs keep '
        'their own).', ['method', 'default', 'pytorch']),
}

FLAGS = {
    'methods': s.Flag('list', list(METHODS) + ['supervised'],
                      'Methods to run (and the supervised baseline).'),
    'pairs': s.Flag(
        'list', [kind for kind, _ in PAIRS],
        'Pair sources to run for each method (semantic, augmented); e.g. '
        '--pairs=augmented trains only the PA arms. The tables collect the '
        'planned runs only, so rebuild them with every source '
        '(--collect_only).'),
    **RECIPE_FLAGS,
}

CPU = dict(dataset='tiny_imagenet', pairs_per_class=100, epochs=8.0,
           batch_size=128, arch='resnet18', width=0.25, image_size=32,
           load_size=-1, seed=0, eval_datasets='cifar10,tiny_imagenet',
           eval_train_limit=0)


def trained_runs(methods, kinds=None):
  """Each method × the pair sources ``kinds`` (default both), and the
  supervised run (on the augmented set) where ``methods`` names it."""
  kinds = [kind for kind, _ in PAIRS] if kinds is None else list(kinds)
  suffix = dict(PAIRS)
  groups = []
  for method in methods:
    if method == 'supervised':
      groups.append(s.product(s.sweep('method', ['supervised']),
                              s.sweep('pairs', ['augmented'], names=[''])))
      continue
    if method not in METHODS:
      raise UserError(f'Unknown method {method!r} in --methods; choose from '
                      f'{", ".join(METHODS + ("supervised",))}.')
    unknown = set(kinds) - set(suffix)
    if unknown:
      raise UserError(f'Unknown pair source {sorted(unknown)[0]!r} in '
                      '--pairs; choose from semantic, augmented.')
    ordered = [kind for kind, _ in PAIRS if kind in kinds]
    groups.append(s.product(s.sweep('method', [method]), s.sweep(
        'pairs', ordered, names=[suffix[k] for k in ordered])))
  return s.chain(*groups)


def module_of(run) -> str:
  """The run's config module: configs/<method>_<sp|pa>.py (supervised.py)."""
  if run['method'] == 'supervised':
    return 'supervised'
  return f'{run["method"]}_{dict(PAIRS)[run["pairs"]]}'


def run_config(name, pair_file, ctx):
  """One run's config: the method's runlocal config at the shared CPU scale."""
  c = importlib.import_module(f'configs.{name}').get_config('runlocal')
  c.name = f'compare_methods-{name}'
  c.data.dataset = ctx.dataset
  c.data.pairs = 'pair_file'
  c.data.pair_file = pair_file
  cpu_scale.apply(c, arch=ctx.arch, width=ctx.width,
                  image_size=ctx.image_size, batch_size=ctx.batch_size,
                  epochs=ctx.epochs, seed=ctx.seed,
                  eval_datasets=ctx.eval_datasets,
                  eval_train_limit=ctx.eval_train_limit)
  if ctx.optimizer != 'method':
    c.optim.name = ctx.optimizer
    c.optim.base_lr = ctx.base_lr
    c.optim.weight_decay = ctx.weight_decay
    c.optim.warmup_epochs = min(1.0, ctx.epochs / 4)
  else:  # The method's CPU recipe (SimCLR's: compare_pairs' two arms).
    cpu_scale.apply_cpu_recipe(c)
  c.data.load_size = ctx.load_size
  if ctx.arch.startswith('vit'):
    c.model.init = 'default'  # ViTs initialise as their paper does.
  elif ctx.init != 'method':
    c.model.init = ctx.init
  common.round_queue(c)
  return c


def runs(ctx):
  """A floor per layer initialisation the trained runs start from (the
  untrained encoder: SimCLR's network and seed), then the trained runs."""
  trained = trained_runs(ctx.methods, ctx.pairs)
  inits = sorted({run_config(module_of(r), '', ctx).model.init
                  for r in trained})
  floors = s.product(s.sweep('untrained', [True], names=['random_init']),
                     s.sweep('init', inits))
  return s.chain(floors, trained)


def config(run, ctx):
  if run.untrained:  # SimCLR's network with this init, before any step.
    c = run_config('simclr_sp', ctx.inputs['semantic'], ctx)
    c.model.init = run['init']
    return c
  return run_config(module_of(run), ctx.inputs[run['pairs']], ctx)


def setup(ctx):
  """The matched PS/PA pair files (all classes × P images)."""
  source = sources.load_split(ctx.dataset, 'train',
                              sources.resolve_data_dir(''), None)
  return pairs_lib.build_matched_sets(
      source, 'all', ctx.pairs_per_class, 'images', 0,
      os.path.join(ctx.workdir, 'pairs'))['files']


def labels(run, ctx):
  del ctx
  if run.untrained:
    return {'method': BASELINE, 'pairs': f'{run["init"]} init'}
  return {'method': run['method'],
          'pairs': 'labels' if run['method'] == 'supervised' else run['pairs']}


def title(run) -> str:
  if run.untrained:
    return f'{run.name}: the untrained encoder'
  return f'{run.name} ({run["pairs"]} pairs)'


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


def span(pair, digits):
  """'first → last', or '–' for a run without training steps."""
  if pair[0] is None:
    return '–'
  return f'{pair[0]:.{digits}f} → {pair[1]:.{digits}f}'


def settings(ctx) -> str:
  if ctx.optimizer == 'method':
    optimizer = ('each method\'s own optimizer, except SGD for simclr '
                 '(compare_pairs\' recipe) and for '
                 f'{", ".join(sorted(cpu_scale.CPU_OPTIMIZERS))} '
                 '(cpu_scale.CPU_OPTIMIZERS)')
  else:
    optimizer = f'{ctx.optimizer} for every run'
  if ctx.init == 'method':
    init = 'each method\'s own init (SimCLR: model.init=pytorch)'
  else:
    init = f'model.init={ctx.init}'
  return (
      f'Settings: {ctx.dataset} train pairs (all classes × '
      f'{ctx.pairs_per_class} images, matched), {ctx.arch} width '
      f'{ctx.width:g}, {ctx.image_size} px, batch {ctx.batch_size}, '
      f'{ctx.epochs:g} epochs, seed {ctx.seed}, {optimizer}, {init}, '
      f'data.load_size={ctx.load_size}. Top-1 % of the frozen encoder. '
      'Gain: CIFAR-10 probe minus that of the same network untrained (its '
      f'init\'s random-init row); under +{LEARNT_MARGIN:g} points a run is '
      'marked "did not learn".')


COLUMNS = (('cifar10', 'probe'), ('cifar10', 'knn@200'),
           ('tiny_imagenet', 'probe'), ('tiny_imagenet', 'knn@200'))

TABLE = s.Table(
    title='# Every method on semantic vs augmented pairs at CPU scale',
    settings=settings,
    columns=[
        s.label('method'), s.label('pairs'),
        *(s.metric(d, m) for d, m in COLUMNS),
        s.Column('gain', gain_cell),
        s.Column('loss first → last', lambda r, _: span(r['loss'], 3)),
        s.Column('effective rank first → last',
                 lambda r, _: span(r['rank'], 1)),
        s.Column('train wall time', lambda r, _: (
            '–' if r['method'] == BASELINE
            else format_seconds(r['train_seconds']))),
    ],
    csv=s.results_csv(('method', 'pairs')))

PLOTS = [
    s.Plot('bars.png', 'CIFAR-10 probe per method', plots.bars(
        group='method', hue='pairs',
        hues=(('semantic', -0.2), ('augmented', 0.2), ('labels', 0.0)),
        floor=lambda r: r['method'] == BASELINE,
        floor_label=lambda r: f'random init ({r["pairs"]})')),
    s.Plot('rank.png', 'Effective rank per run', plots.curves(
        key='embed_rank', colour='method', style='pairs',
        styles={'semantic': '-', 'augmented': '--'},
        ylabel='effective rank of the embedding', log=True),
           caption='Collapse monitor: effective rank over training (every 10 '
           'steps, from the records) of the batch embedding the loss sees, '
           'whose width differs by method (a projection, an expander or '
           'DINO\'s prototype logits), so compare within a method.'),
]

STUDY = s.Study(
    name='methods',
    doc='every method × {semantic, augmented} pairs + supervised, CPU scale',
    runs=runs, config=config, setup=setup, labels=labels, title=title,
    table=TABLE, plots=PLOTS, scales={'cpu': CPU}, flags=FLAGS,
    workdir='runs/compare_methods', out='docs/compare_methods',
    command='python launch/compare_methods.py', prefix='compare_methods')
