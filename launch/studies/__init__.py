"""A study is data: its runs, its table and its plots (see README.md).

One module per study in this folder declares ``STUDY = Study(...)``;
``launch/studies/runner.py`` plans, trains, records, collects and renders
any of them, and ``launch/run_study.py --study=NAME`` is their one CLI.

Runs are sweeps over keys, after the flax/Google research convention
(``h.product([h.sweep('config.seed', [0, 1, 2]), ...])``): a run is a name
and a dict of overrides. A ``config.``-prefixed key sets that config field
after the study's ``config(run, ctx)`` builds the run's base config; any
other key is an argument that builder reads (``run['method']``). The key
``untrained`` (True) makes a run the untrained encoder, evaluated before any
step (``train.evaluate_init``) — a comparison's floor.
"""

import builtins
import dataclasses
import importlib
import math
import os
import pkgutil
from typing import (Any, Callable, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Union)

from ssl_pairs.errors import UserError

# Modules of this folder that are the framework, not studies.
FRAMEWORK = ('runner', 'plots')


@dataclasses.dataclass(frozen=True)
class Run:
  """One planned run: its name (workdir and record name) and overrides."""
  name: str
  overrides: Mapping[str, Any]

  def __getitem__(self, key):
    return self.overrides[key]

  def get(self, key, default=None):
    return self.overrides.get(key, default)

  @property
  def args(self) -> Dict[str, Any]:
    """The overrides the study's config builder reads (no ``config.``)."""
    return {k: v for k, v in self.overrides.items()
            if not k.startswith('config.')}

  @property
  def config_overrides(self) -> Dict[str, Any]:
    """{dotted config field: value} set on the built config."""
    return {k[len('config.'):]: v for k, v in self.overrides.items()
            if k.startswith('config.')}

  @property
  def untrained(self) -> bool:
    return bool(self.overrides.get('untrained', False))


def _name_part(key: str, value) -> str:
  """A value's part of a run name: a string as it is, else the key's last
  field and the value (``config.seed`` 1 → ``seed1``)."""
  if isinstance(value, str):
    return value
  leaf = key.split('.')[-1]
  if isinstance(value, float):
    return f'{leaf}{value:g}'
  return f'{leaf}{value}'


def _merge(a: Run, b: Run) -> Run:
  both = set(a.overrides) & set(b.overrides)
  if both:
    raise ValueError(f'runs {a.name!r} and {b.name!r} both set '
                     f'{sorted(both)[0]!r}; a product or zip of sweeps needs '
                     'disjoint keys')
  return Run('_'.join(n for n in (a.name, b.name) if n),
             {**a.overrides, **b.overrides})


def sweep(key: str, values: Iterable[Any],
          names: Optional[Sequence[str]] = None) -> List[Run]:
  """One run per value of ``key``; ``names`` (one per value, '' for none)
  replace the default name parts."""
  values = list(values)
  if names is None:
    names = [_name_part(key, v) for v in values]
  names = list(names)
  if len(names) != len(values):
    raise ValueError(f'sweep({key!r}): {len(values)} values but '
                     f'{len(names)} names')
  return [Run(n, {key: v}) for n, v in builtins.zip(names, values)]


def product(*sweeps: Sequence[Run]) -> List[Run]:
  """Every combination, the first sweep outermost; names joined by '_'."""
  out = [Run('', {})]
  for s in sweeps:
    out = [_merge(a, b) for a in out for b in s]
  return out


def zip(*sweeps: Sequence[Run]):  # pylint: disable=redefined-builtin
  """The i-th run of every sweep merged into one (equal lengths)."""
  lengths = {len(s) for s in sweeps}
  if len(lengths) > 1:
    raise ValueError(f'zip of sweeps of lengths {sorted(lengths)}')
  out = []
  for runs in builtins.zip(*sweeps):
    merged = Run('', {})
    for r in runs:
      merged = _merge(merged, r)
    out.append(merged)
  return out


def chain(*sweeps: Sequence[Run]) -> List[Run]:
  """One sweep after the other."""
  return [r for s in sweeps for r in s]


@dataclasses.dataclass(frozen=True)
class Flag:
  """A study's own flag (the runner defines the shared ones): kind is one of
  string, integer, float, bool, list, enum (``enum_values``)."""
  kind: str
  default: Any
  help: str
  enum_values: Sequence[str] = ()


@dataclasses.dataclass(frozen=True)
class Column:
  """A table column: its header and ``cell(record, results) -> str``
  (``results``: every collected record by run name)."""
  header: str
  cell: Callable[[Dict, Dict[str, Dict]], str]


def label(header: str, key: Optional[str] = None) -> Column:
  """A column of the record's label ``key`` (default: the header)."""
  return Column(header, lambda r, _: str(r[key or header]))


def metric(dataset: str, name: str, digits: int = 2) -> Column:
  """The top-1 % of ``name`` (probe, knn@20, knn@200) on ``dataset``."""
  return Column(f'{dataset} {name}', lambda r, _: (
      f'{r["results"].get(dataset, {}).get(name, math.nan):.{digits}f}'))


def reference(header: str, values: Mapping[str, Any],
              key: Union[str, Callable[[Dict], str]] = 'name') -> Column:
  """The papers' (or a peer's) number beside ours: ``values[record[key]]``,
  '–' where none is known."""
  get = key if callable(key) else (lambda r: r.get(key))
  return Column(header, lambda r, _: str(values.get(get(r), '–')))


@dataclasses.dataclass(frozen=True)
class Csv:
  """results.csv: its header and the rows of one record."""
  header: Sequence[str]
  rows: Callable[[Dict], Iterable[Sequence[Any]]]


def results_csv(labels: Sequence[str],
                metrics: Sequence[str] = ('probe', 'knn@20', 'knn@200')
                ) -> Csv:
  """One row per record, dataset and metric: the labels, dataset, metric,
  top-1 % and the training wall time."""
  def rows(r):
    for dataset, values in r['results'].items():
      for name in metrics:
        if name in values:
          yield [*(r[k] for k in labels), dataset, name, values[name],
                 round(r['train_seconds'], 1)]
  return Csv([*labels, 'dataset', 'metric', 'top1', 'train_seconds'], rows)


@dataclasses.dataclass(frozen=True)
class Section:
  """A part of results.md after the table: a '## title' heading and the
  markdown lines ``lines(results, ctx)`` returns (a second table, a learning
  curve by epoch); a section without lines is left out."""
  title: str
  lines: Callable[[Dict[str, Dict], Any], List[str]]


@dataclasses.dataclass(frozen=True)
class Table:
  """results.md (and results.csv): a title, a settings paragraph
  (``settings(ctx)``), one row per collected run in plan order, then
  ``reference_rows`` ({row label: {column header: value}}: the papers' or a
  peer's numbers, '–' in the columns they lack), then ``sections``."""
  title: str
  columns: Sequence[Column]
  csv: Csv
  settings: Optional[Callable[[Any], str]] = None
  reference_rows: Mapping[str, Mapping[str, Any]] = dataclasses.field(
      default_factory=dict)
  sections: Sequence[Section] = ()


@dataclasses.dataclass(frozen=True)
class Plot:
  """A PNG beside results.md: ``draw(results, path)``, shown with ``alt``
  after its ``caption`` paragraph (if any)."""
  file: str
  alt: str
  draw: Callable[[Dict[str, Dict], str], None]
  caption: str = ''


@dataclasses.dataclass(frozen=True)
class Study:
  """A comparison, declared.

  Attributes:
    name: ``--study=NAME`` (its module's name).
    doc: one line for ``--list``.
    runs: the planned runs — a list of Run, or ``runs(ctx)`` when they depend
      on the flags.
    config: ``config(run, ctx)``: the run's base config (the ``config.``
      overrides are set after it).
    table: results.md and results.csv.
    plots: the PNGs.
    scales: {scale: {shared flag: value}} — the defaults of the shared
      flags the study uses (``--scale`` picks one; the first is the default;
      a shared flag the study's scale lacks is refused).
    flags: the study's own flags ({name: Flag}).
    setup: ``setup(ctx)``, run once before the runs are configured (build the
      pair files); its result is ``ctx.inputs``.
    labels: ``labels(run, ctx)``: the fields a record keeps beside its name,
      which label columns show (default: the run's overrides, 'config.'
      dropped: ``config.seed`` → ``seed``).
    title: ``title(run)``: the line printed when a run starts.
    workdir, out: the default --workdir and the committed page ('{scale}' is
      the scale's name); another --workdir writes to <workdir>/report.
    command: the program the page's Command line names.
    prefix: config.name is '<prefix>-<run name>'.
    page: the file stem of the page and its CSV (``<out>/<page>.md``,
      ``<page>.csv``; default 'results'), so several studies can share one
      ``out`` folder (the reproduce tables).
    measure: ``measure(run, run_dir, ctx) -> dict``: measurements of a
      finished run beyond its eval.json (an invariance score, a miner's pair
      precision), taken once from its workdir and kept in its record as
      ``record['measures']``.
  """
  name: str
  doc: str
  runs: Union[Sequence[Run], Callable[[Any], Sequence[Run]]]
  config: Callable[[Run, Any], Any]
  table: Table
  plots: Sequence[Plot] = ()
  scales: Mapping[str, Mapping[str, Any]] = dataclasses.field(
      default_factory=lambda: {'cpu': {}})
  flags: Mapping[str, Flag] = dataclasses.field(default_factory=dict)
  setup: Optional[Callable[[Any], Any]] = None
  labels: Optional[Callable[[Run, Any], Dict[str, Any]]] = None
  title: Optional[Callable[[Run], str]] = None
  workdir: str = ''
  out: str = ''
  command: str = ''
  prefix: str = ''
  page: str = 'results'
  measure: Optional[Callable[[Run, str, Any], Dict[str, Any]]] = None

  def __post_init__(self):
    for field, value in (('workdir', f'runs/{self.name}'),
                         ('out', f'docs/{self.name}'),
                         ('command',
                          f'python launch/run_study.py --study={self.name}'),
                         ('prefix', self.name)):
      if not getattr(self, field):
        object.__setattr__(self, field, value)


def names() -> List[str]:
  """Every study in this folder (a module with a ``STUDY``), sorted."""
  folder = os.path.dirname(os.path.abspath(__file__))
  return sorted(m.name for m in pkgutil.iter_modules([folder])
                if not m.name.startswith('_') and m.name not in FRAMEWORK)


def get(name: str) -> Study:
  """The study ``name`` (launch/studies/<name>.py's ``STUDY``)."""
  if name not in names():
    raise UserError(f'Unknown study {name!r}; choose from '
                    f'{", ".join(names())} (--list describes them).')
  return importlib.import_module(f'{__name__}.{name}').STUDY
