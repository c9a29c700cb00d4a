"""The one runner of every study (``launch/studies/<name>.py``).

``execute(study, ctx)`` plans the study's runs, trains what is missing
(``train.run``: a finished workdir is skipped, a killed one resumes; an
``untrained`` run is ``train.evaluate_init``), leaves a committed record of
each finished run in ``<out>/runs/<name>.json`` (``launch/records.py``: its
results, monitor curve, config, pair-file hash and commit; a record of
another config or other pairs is refused, naming what differs; a run with a
record is done even when its workdir is gone), collects the records and
renders ``<out>/results.md``, ``results.csv`` and the study's PNGs.

The flags every study shares are defined here, once (``define_flags``); a
study's scale (``--scale``) gives their defaults and a study's own flags are
declared in its ``Study.flags``.
"""

import csv
import os
import re
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from absl import flags

from launch import records
from launch import studies as studies_lib
from ssl_pairs.errors import UserError
from ssl_pairs.metrics import format_seconds

# The scale's settings (a study's ``scales`` entries), one flag each.
SHARED = {
    'dataset': ('string', 'Pretraining dataset (labelled).'),
    'pairs_per_class': ('integer', 'P.'),
    'epochs': ('float', 'Pretraining epochs (every run).'),
    'batch_size': ('integer', 'Pairs per step.'),
    'arch': ('string', 'Backbone.'),
    'width': ('float', 'ResNet width multiplier.'),
    'image_size': ('integer', 'Pretraining resolution.'),
    'load_size': ('integer',
                  'data.load_size: -1 = cut the views from the stored (64-px) '
                  'images, as compare_pairs does; 0 = resize to --image_size '
                  'first.'),
    'seed': ('integer', 'Training seed (same for every run).'),
    'eval_datasets': ('string', 'Comma list (see config.eval.datasets).'),
    'eval_train_limit': ('integer',
                         'Cap on probe/kNN training images (0 = all).'),
}
# Flags that choose what this invocation does, not what the table holds: the
# page's Command line leaves them out.
INVOCATION = ('collect_only', 'dry_run', 'only', 'study', 'list')

_DEFINED = set()  # The flags define_flags defined (it may run again).


def _define(kind, name, default, help_text, enum_values=(), fv=flags.FLAGS):
  if name in _DEFINED:
    return
  if kind == 'enum':
    flags.DEFINE_enum(name, default, list(enum_values), help_text,
                      flag_values=fv)
  else:
    getattr(flags, f'DEFINE_{kind}')(name, default, help_text, flag_values=fv)
  _DEFINED.add(name)


def define_flags(study: Optional[studies_lib.Study] = None):
  """Defines the shared flags (the defaults: ``study``'s first scale) and
  ``study``'s own."""
  scale = dict(next(iter(study.scales.values()))) if study else {}
  _define('string', 'study', study.name if study else None,
          'The study to run (--list names them).')
  _define('bool', 'list', False, 'List the studies and exit.')
  _define('string', 'workdir', study.workdir.format(
      scale=next(iter(study.scales))) if study else '', 'Runs go here.')
  _define('string', 'out', '',
          'Tables and plots (default: the committed docs/ page of the study '
          'for the default --workdir, else <workdir>/report).')
  _define('string', 'scale', next(iter(study.scales)) if study else 'cpu',
          'The preset of the shared settings (cpu|paper, where the study '
          'has it); each setting\'s flag overrides it.')
  for name, (kind, help_text) in SHARED.items():
    _define(kind, name, scale.get(name), help_text)
  _define('bool', 'collect_only', False,
          'Only rebuild the tables and plots from the records.')
  _define('bool', 'dry_run', False,
          'List the planned runs, their state and overrides; train nothing.')
  _define('list', 'only', [], 'Train only these runs (the others are '
          'collected from their records).')
  for name, flag in (study.flags.items() if study else ()):
    _define(flag.kind, name, flag.default, flag.help, flag.enum_values)


def study_from_argv(argv: Sequence[str]) -> Optional[str]:
  """The --study value of a command line (before flags are parsed)."""
  for i, a in enumerate(argv):
    if a.startswith(('--study=', '-study=')):
      return a.split('=', 1)[1]
    if a in ('--study', '-study') and i + 1 < len(argv):
      return argv[i + 1]
  return None


class Context:
  """One invocation of a study: its settings (``ctx.epochs``, ``ctx.methods``,
  …: the scale's, the flags' and the study's own), paths and mode.
  ``ctx.inputs`` is what the study's ``setup`` returned."""

  def __init__(self, study, values: Dict[str, Any], workdir: str, out: str,
               scale: str = 'cpu', collect_only: bool = False,
               dry_run: bool = False, only: Sequence[str] = ()):
    self.study, self.values, self.scale = study, dict(values), scale
    self.workdir, self.out = os.path.abspath(workdir), out
    self.collect_only, self.dry_run, self.only = collect_only, dry_run, only
    self.inputs = None

  def __getattr__(self, name):
    values = self.__dict__.get('values', {})
    if name in values:
      return values[name]
    raise AttributeError(f'study {self.__dict__.get("study").name!r} has no '
                         f'setting {name!r}')


def context(study, *, workdir: str = '', out: str = '', scale: str = '',
            collect_only=False, dry_run=False, only=(), **values) -> Context:
  """A Context without flags: the scale's settings, ``values`` over them
  (and over the study's own flags' defaults); paths resolved as the CLI's."""
  scale = scale or next(iter(study.scales))
  if scale not in study.scales:
    raise UserError(f'Study {study.name!r} has no --scale={scale}; choose '
                    f'from {", ".join(study.scales)}.')
  merged = {**{n: f.default for n, f in study.flags.items()},
            **study.scales[scale]}
  for name, value in values.items():
    if name not in merged:
      raise UserError(f'--{name} means nothing to study {study.name!r} '
                      f'(at --scale={scale}).')
    merged[name] = value
  default_workdir = study.workdir.format(scale=scale)
  workdir = workdir or default_workdir
  if not out:
    out = (study.out.format(scale=scale) if workdir == default_workdir
           else os.path.join(workdir, 'report'))
  return Context(study, merged, workdir, out, scale, collect_only, dry_run,
                 tuple(only))


def context_from_flags(study) -> Context:
  """The Context of the parsed flags (a shared flag counts when given or set
  away from its default)."""
  fv = flags.FLAGS
  if any(name not in fv for name in study.flags):
    raise UserError(f'The flags of study {study.name!r} are not defined: '
                    'pass --study=NAME once, as --study=NAME.')
  given = {}
  for name in SHARED:
    f = fv[name]
    if f.present or f.value != f.default:
      given[name] = f.value
  for name in study.flags:
    given[name] = fv[name].value
  return context(study, workdir=fv.workdir, out=fv.out, scale=fv.scale,
                 collect_only=fv.collect_only, dry_run=fv.dry_run,
                 only=fv.only, **given)


_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.=+-]*')


def plan(study, ctx) -> List[studies_lib.Run]:
  """The study's runs in order (names checked: unique, one path part)."""
  runs = list(study.runs(ctx) if callable(study.runs) else study.runs)
  seen = set()
  for r in runs:
    if not _NAME.fullmatch(r.name) or r.name in seen:
      raise UserError(f'Study {study.name!r}: run name {r.name!r} is '
                      + ('planned twice' if r.name in seen else
                         'not a folder name'))
    seen.add(r.name)
  return runs


def _set(config, dotted: str, value):
  *parents, leaf = dotted.split('.')
  target = config
  for part in parents:
    target = target[part]
  if leaf not in target:
    raise UserError(f'config.{dotted} is not a config field.')
  target[leaf] = value


def configure(study, run, ctx):
  """The run's config: the study's base config, then its ``config.``
  overrides; named '<prefix>-<run name>'."""
  c = study.config(run, ctx)
  for key, value in run.config_overrides.items():
    _set(c, key, value)
  c.name = f'{study.prefix}-{run.name}'
  return c


def labels(study, run, ctx) -> Dict[str, Any]:
  if study.labels is not None:
    return study.labels(run, ctx)
  return {k[len('config.'):] if k.startswith('config.') else k: v
          for k, v in run.overrides.items() if k != 'untrained'}


def _title(study, run) -> str:
  if study.title is not None:
    return study.title(run)
  return f'{run.name}: the untrained encoder' if run.untrained else run.name


def collect(planned, record_dir) -> Dict[str, Dict]:
  """{run name: record} for every planned run that has a record."""
  results = {}
  for r in planned:
    record = records.load_record(record_dir, r.name)
    if record is not None:
      results[r.name] = record
  return results


def _state(run_dir, record, config, pair_file) -> str:
  """A dry run's word on a planned run."""
  from ssl_pairs import checkpoint  # pylint: disable=g-import-not-at-top
  if record is not None:
    try:
      records.check_record(record, config.to_dict(), pair_file)
    except UserError as e:
      return f'refused: {e}'
    return 'done'
  if os.path.isdir(checkpoint.checkpoint_dir(run_dir)):
    return 'to resume'
  return 'to train'


def _measured(study, run, run_dir, record, record_dir, ctx) -> Dict:
  """The record with the study's ``measures`` of the run: kept from the
  committed record of the same finished run, else measured now."""
  if study.measure is None:
    return record
  old = records.load_record(record_dir, run.name)
  if (old is not None and 'measures' in old
      and old.get('finished') == record['finished']):
    return dict(record, measures=old['measures'])
  return dict(record, measures=study.measure(run, run_dir, ctx))


def execute(study, ctx, command_flags: Sequence[str] = ()) -> Optional[Dict]:
  """Plans, trains (unless ctx.collect_only or ctx.dry_run), records,
  collects and renders; returns the collected records (None for a dry
  run)."""
  from ssl_pairs import train  # pylint: disable=g-import-not-at-top
  t0 = time.time()
  planned = plan(study, ctx)
  unknown = [n for n in ctx.only if n not in {r.name for r in planned}]
  if unknown:
    raise UserError(f'--only={unknown[0]} is not a run of study '
                    f'{study.name!r} (--dry_run lists them).')
  record_dir = os.path.join(ctx.out, 'runs')
  commit = records.commit()  # The code these runs train with.
  ctx.inputs = study.setup(ctx) if study.setup is not None else None
  to_train = 0
  for i, run in enumerate(planned):
    head = f'[{i + 1}/{len(planned)}]'
    run_dir = os.path.join(ctx.workdir, run.name)
    config = configure(study, run, ctx)
    pair_file = records.pair_file_of(config.to_dict())
    finished = os.path.exists(os.path.join(run_dir, 'eval.json'))
    if finished:
      record = records.make_record(run_dir, run.name, record_dir, commit,
                                   extra=labels(study, run, ctx),
                                   allow_no_steps=run.untrained)
    else:
      record = records.load_record(record_dir, run.name)
    if ctx.dry_run:
      state = _state(run_dir, record, config, pair_file)
      to_train += state.startswith('to ')
      shown = ', '.join(f'{k}={v}' for k, v in run.overrides.items())
      print(f'{head} {run.name}: {state} ({shown})')
      continue
    if record is not None:
      # Checked before it is written: a stale workdir never replaces a
      # committed record.
      records.check_record(record, config.to_dict(), pair_file)
      if finished:
        records.write_record(_measured(study, run, run_dir, record,
                                       record_dir, ctx), record_dir)
    if ctx.collect_only:
      continue
    if record is not None:
      print(f'{head} {run.name}: done (record '
            f'{records.record_path(record_dir, run.name)}), skipped.')
      continue
    if ctx.only and run.name not in ctx.only:
      print(f'{head} {run.name}: not in --only, left for later.')
      continue
    print(f'{head} === {_title(study, run)} ===')
    if run.untrained:
      train.evaluate_init(config, run_dir)
    else:
      train.run(config, run_dir)
    record = records.make_record(run_dir, run.name, record_dir, commit,
                                 extra=labels(study, run, ctx),
                                 allow_no_steps=run.untrained)
    records.write_record(_measured(study, run, run_dir, record, record_dir,
                                   ctx), record_dir)
  if ctx.dry_run:
    print(f'{to_train} of {len(planned)} runs to train or resume; records in '
          f'{record_dir}.')
    return None
  results = collect(planned, record_dir)
  render(study, ctx, results, ' '.join([study.command, *command_flags]),
         [r.name for r in planned])
  print(f'Done in {format_seconds(time.time() - t0)}; {len(results)} of '
        f'{len(planned)} runs collected; see '
        f'{os.path.join(ctx.out, study.page + ".md")}')
  return results


def markdown(study, ctx, results, command: str, planned_names=()) -> str:
  """results.md: title, Command, settings, the table, what is missing and
  the plots."""
  table = study.table
  lines = [table.title, '', f'Command: `{command.strip()}`', '']
  if table.settings is not None:
    lines += [table.settings(ctx), '']
  lines += ['| ' + ' | '.join(c.header for c in table.columns) + ' |',
            '|' + '---|' * len(table.columns)]
  for r in results.values():
    lines.append('| ' + ' | '.join(c.cell(r, results) for c in table.columns)
                 + ' |')
  for row, values in table.reference_rows.items():
    cells = [row] + [str(values.get(c.header, '–'))
                     for c in table.columns[1:]]
    lines.append('| ' + ' | '.join(cells) + ' |')
  missing = [n for n in planned_names if n not in results]
  if missing:
    lines += ['', f'Not trained yet ({len(missing)} of {len(planned_names)} '
              f'runs): {", ".join(missing)}. The same command trains them; '
              'the rows above are read from the records in [runs/](runs).']
  for section in table.sections:
    body = section.lines(results, ctx) if results else []
    if body:
      lines += ['', f'## {section.title}', '', *body]
  for plot in study.plots:
    if plot.caption:
      lines += ['', plot.caption]
    lines += ['', f'![{plot.alt}]({plot.file})']
  return '\n'.join(lines + [''])


def render(study, ctx, results, command: str, planned_names=()) -> None:
  """Writes results.csv, results.md and the plots (when there are records)
  in ``ctx.out``."""
  os.makedirs(ctx.out, exist_ok=True)
  with open(os.path.join(ctx.out, f'{study.page}.csv'), 'w',
            newline='') as f:
    w = csv.writer(f)
    w.writerow(study.table.csv.header)
    for r in results.values():
      for row in study.table.csv.rows(r):
        w.writerow(row)
  with open(os.path.join(ctx.out, f'{study.page}.md'), 'w') as f:
    f.write(markdown(study, ctx, results, command, planned_names))
  if results:
    for plot in study.plots:
      plot.draw(results, os.path.join(ctx.out, plot.file))


def table_flags(argv: Sequence[str]) -> List[str]:
  """The flags of a command line that decide the table (less INVOCATION)."""
  out, skip = [], False
  for a in argv:
    if skip:
      skip = False
      continue
    name = a.lstrip('-').split('=')[0] if a.startswith('-') else ''
    if name.startswith('no') and name[2:] in ('collect_only', 'dry_run',
                                              'list'):
      name = name[2:]
    if name in INVOCATION:
      skip = '=' not in a and name in ('only', 'study')
      continue
    out.append(a)
  return out


def list_studies() -> None:
  for name in studies_lib.names():
    study = studies_lib.get(name)
    print(f'{name}: {study.doc} (--scale={"|".join(study.scales)}; '
          f'{study.workdir} → {study.out})')


def main(argv, study: Optional[studies_lib.Study] = None):
  """The program of ``launch/run_study.py`` (and of a study's own CLI, which
  passes its ``study``)."""
  del argv
  fv = flags.FLAGS
  if fv.list:
    list_studies()
    return
  if study is None:
    if not fv.study:
      raise UserError('Pass --study=NAME (--list names the studies).')
    study = studies_lib.get(fv.study)
  elif fv.study != study.name:
    raise UserError(f'This program runs study {study.name!r}; run '
                    f'launch/run_study.py --study={fv.study}.')
  execute(study, context_from_flags(study), table_flags(sys.argv[1:]))
