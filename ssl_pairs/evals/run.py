"""Evaluation runner: datasets → features → kNN + linear probe → report.

``config.eval.datasets`` is a comma list of dataset names or paths (see
:func:`ssl_pairs.data.sources.load_split`); a trailing ``?`` marks a dataset as
optional (skipped with a note when it is not on disk, e.g. ``cifar100?``).
A required builtin dataset that is missing is downloaded first when
``download`` (``data.download``) is on; an optional one never is (``?`` means
"if present"), and its note names the command that prepares it.
Results are keyed by the name as written (for a path: the file or folder
name). Images are resized to the pretraining resolution. A dataset without a
test split is split 50/50 per class with a fixed seed, and its result says so.

Reports: ``workdir/eval.json`` (merged with earlier results, so evaluating more
datasets later never loses earlier ones) and ``workdir/eval.md``.
"""

import dataclasses
import json
import os
import time
from typing import Dict, List, Optional, Tuple

import jax
import numpy as np

from ssl_pairs import checkpoint as checkpoint_lib
from ssl_pairs import online_probe as online_lib
from ssl_pairs import sharding as sharding_lib
from ssl_pairs import workdir as workdir_lib
from ssl_pairs.data import sources as sources_lib
from ssl_pairs.errors import UserError
from ssl_pairs.evals import boxes as boxes_lib
from ssl_pairs.evals import features as features_lib
from ssl_pairs.evals import knn as knn_lib
from ssl_pairs.evals import linear_probe as probe_lib
from ssl_pairs.evals.sets import (  # pylint: disable=unused-import
    PRETRAINING, EvalSet, load_all, load_eval_set,
    meaningless as _meaningless, parse_datasets, result_key,
    stratified_halves, stratified_subset)
from ssl_pairs.metrics import format_seconds, say
from ssl_pairs.models import get_backbone


class Evaluator:
  """Evaluates encoder variables on the configured datasets.

  Datasets are loaded once (on first use) and kept, so a learning curve with
  many evaluation points pays the loading cost once.
  """

  def __init__(self, eval_config, data_dir: str, image_size: int, model_config,
               mesh, seed: int = 0, pretraining_dataset: Optional[str] = None,
               download: bool = False):
    self.config = eval_config
    self.download = download
    self.pretraining_dataset = pretraining_dataset
    self.data_dir = data_dir
    self.image_size = image_size
    self.mesh = mesh
    self.seed = seed
    backbone, _ = get_backbone(model_config)
    self.feature_fn = features_lib.make_feature_fn(backbone, mesh,
                                                   model_config.dtype)
    self._sets: Optional[List[EvalSet]] = None
    self.skipped: Dict[str, str] = {}
    # --- Box probe and object crops (eval.box_probe, eval.object_crops;
    # ssl_pairs/evals/boxes.py): names checked now, data read on first use.
    self.box_tasks = boxes_lib.BoxTasks(self)
    # --- end box tasks.

  def protocol(self, ks) -> Dict[str, object]:
    """The settings that decide a result (with n_train/n_test and the step):
    a result of another protocol is another number, kept beside it."""
    c = self.config
    return {'image_size': self.image_size, 'train_limit': c.train_limit,
            'test_limit': c.test_limit, 'knn_k': list(ks),
            'knn_temperature': c.knn_temperature, 'probe': bool(c.probe),
            'probe_max_iter': c.probe_max_iter if c.probe else None,
            'seed': self.seed}

  def sets(self) -> List[EvalSet]:
    if self._sets is None:

      def skip(name, error):
        self.skipped[result_key(name)] = str(error)
        say(f'Skipping optional eval dataset {name}: {error}')

      self._sets = load_all(
          parse_datasets(self.config.datasets, self.pretraining_dataset),
          lambda name, optional: load_eval_set(
              name, self.data_dir, self.image_size, self.config, self.seed,
              download=self.download and not optional), skip)
    return self._sets

  def __call__(self, variables, online_probe=None
               ) -> Dict[str, Dict[str, object]]:
    """{dataset: {'knn@k': %, 'probe': %, 'probe_l2': λ, ...}}.

    ``online_probe``: (classifier params, pretraining dataset name) of the
    online linear probe (``ssl_pairs/online_probe.py``), tested on that
    dataset's test split here ('online_probe': %).
    """
    results = {}
    ks = [int(k) for k in str(self.config.knn_k).split(',') if k.strip()]
    extracted = {}  # Features the box probe may reuse (eval.box_probe).
    for s in self.sets():
      t0 = time.time()
      bs = self.config.batch_size
      ftr = features_lib.extract_features(self.feature_fn, variables, s.train,
                                          bs, self.mesh)
      fte = features_lib.extract_features(self.feature_fn, variables, s.test,
                                          bs, self.mesh)
      if self.box_tasks and self.config.get('box_probe', False):
        extracted[s.name] = (s.train.paths, s.test.paths, ftr, fte)
      num_classes = max(s.train.num_classes, s.test.num_classes)
      r = {f'knn@{k}': v for k, v in knn_lib.knn_accuracy(
          ftr, s.train.labels, fte, s.test.labels, num_classes, ks,
          self.config.knn_temperature).items()}
      if self.config.probe:
        probe = probe_lib.linear_probe(
            ftr, s.train.labels, fte, s.test.labels, num_classes,
            max_iter=self.config.probe_max_iter, seed=self.seed)
        r.update(probe=probe['top1'], probe_l2=probe['l2'],
                 probe_iterations=probe['iterations'])
      if online_probe is not None and s.name == result_key(online_probe[1]):
        r['online_probe'] = online_lib.accuracy(online_probe[0], fte,
                                                s.test.labels)
      r.update(n_train=len(s.train), n_test=len(s.test),
               seconds=round(time.time() - t0, 2),
               protocol=self.protocol(ks))
      notes = [s.note] + _meaningless(s, ks)
      if any(notes):
        r['note'] = '; '.join(n for n in notes if n)
      results[s.name] = r
    if self.box_tasks:  # '<name>_boxes' / '<name>_crops' (boxes.py).
      results.update(self.box_tasks(variables, ks, extracted))
    return results


def protocol_text(p: Optional[Dict[str, object]]) -> str:
  """One line naming a result's protocol (for eval.md)."""
  if not p:
    return '-'
  if p.get('task') == 'box_probe':
    return boxes_lib.protocol_text(p)
  limits = '/'.join('all' if not v else str(v)
                    for v in (p['train_limit'], p['test_limit']))
  probe = (f'probe L-BFGS ≤{p["probe_max_iter"]} it.' if p['probe'] else
           'no probe')
  crops = ('object crops (train and test cut to their boxes), '
           if p.get('task') == 'object_crops' else '')
  return (f'{crops}{p["image_size"]} px, limits {limits}, kNN k='
          f'{"/".join(map(str, p["knn_k"]))} τ {p["knn_temperature"]}, '
          f'{probe}, seed {p["seed"]}')


def _metric_columns(results) -> List[str]:
  cols = []
  for r in results.values():
    for k in r:
      if (k.startswith('knn@') or k in ('probe', 'online_probe') or
          k in boxes_lib.COLUMNS) and k not in cols:
        cols.append(k)
  box = [c for c in boxes_lib.COLUMNS if c in cols]  # Last, in their order.
  return sorted((c for c in cols if c not in box),
                key=lambda c: (c in ('probe', 'online_probe'),
                               c == 'online_probe', len(c), c)) + box


def _column_title(c: str) -> str:
  """A metric column's header: top-1 % for classification, else its own."""
  return boxes_lib.TITLES.get(c, f'{c} top-1 %')


def comparable_untrained(results, untrained):
  """{dataset: untrained result} for the datasets whose untrained result was
  measured with the same protocol as the trained one (else no comparison)."""
  out = {}
  for name, r in results.items():
    u = (untrained or {}).get(name)
    if u is not None and u.get('protocol') == r.get('protocol'):
      out[name] = u
  return out


def markdown_table(results: Dict[str, Dict[str, object]],
                   with_protocol: bool = False,
                   untrained: Optional[Dict[str, Dict[str, object]]] = None
                   ) -> str:
  """Markdown table: one row per dataset, top-1 accuracies in %; with
  ``untrained`` (the same evaluation of the encoder before training), each
  dataset also gets an 'untrained encoder' row and a 'gain' row."""
  untrained = comparable_untrained(results, untrained)
  cols = _metric_columns(results)
  header = ['dataset'] + [_column_title(c) for c in cols] + [
      'train / test images', 'step'] + (['protocol'] if with_protocol else []
                                         ) + ['note']
  lines = ['| ' + ' | '.join(header) + ' |',
           '|' + '---|' * len(header)]
  for name, r in results.items():
    vals = [f'{r[c]:.2f}' if c in r else '-' for c in cols]
    extra = [protocol_text(r.get('protocol'))] if with_protocol else []
    lines.append('| ' + ' | '.join(
        [name] + vals + [f'{r.get("n_train", "-")} / {r.get("n_test", "-")}',
                         str(r.get('step', '-'))] + extra +
        [r.get('note', '')]) + ' |')
    u = untrained.get(name)
    if u is None:
      continue
    blank = [''] * (len(header) - 1 - len(cols))
    lines.append('| ' + ' | '.join(
        [f'{name}: untrained encoder'] +
        [f'{u[c]:.2f}' if c in u else '-' for c in cols] + blank) + ' |')
    lines.append('| ' + ' | '.join(
        [f'{name}: gain'] +
        [f'{r[c] - u[c]:+.2f}' if c in r and c in u else '-' for c in cols] +
        blank) + ' |')
  return '\n'.join(lines)


def _history_key(name, r):
  return json.dumps([name, r.get('step'), r.get('n_train'), r.get('n_test'),
                     r.get('protocol')], sort_keys=True)


def atomic_write(path: str, text: str) -> None:
  """Writes ``path`` through a temporary file and a rename, so a failed write
  (a full disk) leaves the old file whole; a failure is one sentence."""
  tmp = f'{path}.tmp{os.getpid()}'
  try:
    with open(tmp, 'w') as f:
      f.write(text)
    os.replace(tmp, path)
  except OSError as e:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise UserError(f'Writing {path} failed ({e.strerror or e}); the previous '
                    'version is intact — free space and rerun the same '
                    'command to evaluate again.') from e


def write_report(workdir: str, results: Dict[str, Dict[str, object]],
                 info: Dict[str, object]) -> Dict[str, object]:
  """Adds ``results`` to workdir/eval.json and rewrites eval.md.

  Nothing is replaced: ``results`` holds the latest result of every dataset
  and ``history`` every result ever written here, each with its step and
  protocol (train/test sizes, k, probe settings, resolution), so
  re-evaluating with other settings keeps the earlier numbers.
  """
  path = os.path.join(workdir, 'eval.json')
  report = {'results': {}}
  if os.path.exists(path):
    with open(path) as f:
      report = json.load(f)
  history = report.get('history')
  if history is None:  # A report from before the history: keep its rows.
    history = [dict(r, dataset=name)
               for name, r in report.get('results', {}).items()]
  seen = {_history_key(h['dataset'], h) for h in history}
  for name, r in results.items():
    if _history_key(name, r) not in seen:
      history.append(dict(r, dataset=name))
  report.update(info)
  report.setdefault('results', {}).update(results)
  report['history'] = history
  atomic_write(path, json.dumps(report, indent=2, sort_keys=True))
  lines = [f'# Evaluation of {report.get("run", workdir)}', '',
           f'- checkpoint step: {report.get("step", "-")}',
           f'- training wall-clock time: '
           f'{format_seconds(report.get("train_seconds"))}', '',
           '## Latest result per dataset', '',
           markdown_table(report['results'], with_protocol=True,
                          untrained=report.get('untrained')), '']
  if comparable_untrained(report['results'], report.get('untrained')):
    lines += ['"untrained encoder": the same evaluation of the network as '
              'initialised, before any step (same seed); "gain": trained '
              'minus untrained, in points.', '']
  if len(history) > len(report['results']):
    lines += ['## Every evaluation written here (oldest first)', '',
              '| dataset | step | ' + ' | '.join(
                  _column_title(c) for c in _metric_columns(
                      {str(i): h for i, h in enumerate(history)})) +
              ' | train / test images | protocol |']
    cols = _metric_columns({str(i): h for i, h in enumerate(history)})
    lines.append('|' + '---|' * (len(cols) + 4))
    for h in history:
      vals = [f'{h[c]:.2f}' if c in h else '-' for c in cols]
      lines.append(f'| {h["dataset"]} | {h.get("step", "-")} | ' +
                   ' | '.join(vals) +
                   f' | {h.get("n_train", "-")} / {h.get("n_test", "-")} | '
                   f'{protocol_text(h.get("protocol"))} |')
    lines.append('')
  atomic_write(os.path.join(workdir, 'eval.md'), '\n'.join(lines))
  return report


def evaluate_checkpoint(config, workdir: Optional[str] = None):
  """Evaluates the encoder of ``config.restore`` (``configs/linear_eval.py``).

  The backbone and resolution come from the checkpoint's own config; the
  datasets and probe settings from ``config.eval``. Results are written to
  ``workdir`` (default: the restored run's directory).
  """
  if not config.restore:
    raise UserError('Nothing to evaluate: pass --config.restore=<workdir of a '
                    'training run>.')
  t0 = time.time()
  # Where the results go, checked (and locked) before the slow evaluation:
  # the restored run's directory unless a workdir is given.
  out_dir = workdir_lib.prepare(workdir or os.path.dirname(
      checkpoint_lib.find_checkpoint_dir(config.restore)))
  with workdir_lib.exclusive(out_dir, 'evaluation',
                             enabled=jax.process_index() == 0):
    report, results = _evaluate_restored(config, out_dir, t0)
  print(markdown_table(results))
  return report


def _evaluate_restored(config, out_dir: str, t0: float):
  """(report, results) of ``evaluate_checkpoint`` once ``out_dir`` is held."""
  saved, step, variables, data = checkpoint_lib.restore_encoder(
      config.restore, config.restore_step or None)
  model_config = _as_config(saved['model'])
  image_size = config.eval.image_size or saved['data']['image_size']
  data_dir = sources_lib.resolve_data_dir(
      config.data_dir or saved['data'].get('data_dir'))
  mesh = sharding_lib.make_mesh()
  evaluator = Evaluator(config.eval, data_dir, image_size, model_config, mesh,
                        seed=config.seed,
                        pretraining_dataset=saved['data'].get('dataset'),
                        download=config.get('download', True))
  variables = jax.device_put(variables, sharding_lib.replicated(mesh))
  results = evaluator(variables)
  for r in results.values():
    r['step'] = step
  report = write_report(out_dir, results, {
      'run': saved.get('name', os.path.basename(out_dir)), 'step': step,
      'train_seconds': data.get('train_seconds'),
      'eval_seconds': round(time.time() - t0, 2),
      'skipped': evaluator.skipped})
  return report, results


def _as_config(d):
  import ml_collections  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict(d)
