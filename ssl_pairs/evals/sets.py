"""Evaluation sets: which datasets ``eval.datasets`` names, how each is
loaded and limited, and the notes that say when a number cannot mean what it
seems — shared by the evaluations (:mod:`ssl_pairs.evals.run`,
:mod:`ssl_pairs.evals.boxes`)."""

import dataclasses
import os
from typing import List, Optional, Tuple

import numpy as np

from ssl_pairs.data import sources as sources_lib
from ssl_pairs.errors import UserError


@dataclasses.dataclass
class EvalSet:
  """One evaluation dataset: train and test splits at the model's resolution."""
  name: str
  train: sources_lib.ImageSource
  test: sources_lib.ImageSource
  note: str = ''


PRETRAINING = 'pretraining'  # In eval.datasets: the run's own data.dataset.


def parse_datasets(spec: str, pretraining: Optional[str] = None
                   ) -> List[Tuple[str, bool]]:
  """'cifar10,cifar100?' → [('cifar10', False), ('cifar100', True)];
  ``pretraining`` (the run's data.dataset) stands in for the name
  'pretraining'."""
  out = []
  for token in str(spec).split(','):
    token = token.strip()
    if not token:
      continue
    name = token.rstrip('?')
    if name == PRETRAINING:
      if not pretraining:
        raise UserError("eval.datasets names 'pretraining', but there is no "
                        'pretraining dataset here; name the evaluation '
                        'dataset instead (e.g. --config.eval.datasets=cifar10).')
      name = pretraining
    out.append((name, token.endswith('?')))
  return out


def result_key(name: str) -> str:
  """The key a dataset's results are stored under (file/folder name for paths)."""
  if os.sep in name or name.endswith('.npz'):
    return os.path.basename(os.path.normpath(name))
  return name


def stratified_subset(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
  """Indices of ≈``limit`` items with every class kept in proportion."""
  if not limit or limit >= len(labels):
    return np.arange(len(labels))
  rng = np.random.default_rng([seed, 0x5AB5])
  picked = []
  for c in np.unique(labels):
    members = np.nonzero(labels == c)[0]
    k = max(1, int(round(limit * len(members) / len(labels))))
    picked.append(rng.choice(members, min(k, len(members)), replace=False))
  return np.sort(np.concatenate(picked))


def stratified_halves(labels: np.ndarray, seed: int):
  """(first half, second half) indices: each class split 50/50 at random."""
  rng = np.random.default_rng([seed, 0x4A1F])
  a, b = [], []
  for c in np.unique(labels):
    members = rng.permutation(np.nonzero(labels == c)[0])
    half = (len(members) + 1) // 2
    a.append(members[:half])
    b.append(members[half:])
  return np.sort(np.concatenate(a)), np.sort(np.concatenate(b))


def load_eval_set(name: str, data_dir: str, image_size: int,
                  eval_config, seed: int, download: bool = False) -> EvalSet:
  """Train/test splits of ``name`` at ``image_size``, limited as configured
  (``download``: see ``sources.load_split``)."""
  note = ''
  if sources_lib.has_split(name, 'test', data_dir):
    train = sources_lib.load_split(name, 'train', data_dir, image_size,
                                   download=download)
    test = sources_lib.load_split(name, 'test', data_dir, image_size,
                                  download=download)
  else:
    whole = sources_lib.load_split(name, 'train', data_dir, image_size,
                                   download=download)
    first, second = stratified_halves(whole.labels, seed)
    train, test = whole.subset(first), whole.subset(second)
    note = f'no test split: stratified 50/50 split with seed {seed}'
  if eval_config.train_limit:
    train = train.subset(stratified_subset(train.labels,
                                           eval_config.train_limit, seed))
  if eval_config.test_limit:
    test = test.subset(stratified_subset(test.labels, eval_config.test_limit,
                                         seed))
  return EvalSet(result_key(name), train, test, note)


def meaningless(s: EvalSet, ks) -> List[str]:
  """Notes for numbers that cannot mean what they seem."""
  notes = []
  classes, counts = np.unique(s.train.labels, return_counts=True)
  if len(classes) < 2:
    notes.append('ONE CLASS: every prediction is right, so these numbers say '
                 'nothing about the encoder; evaluate on a dataset with two or '
                 'more classes')
  else:
    too_many = [k for k in ks if k > counts.min()]
    if too_many:
      notes.append(f'kNN@{"/".join(map(str, too_many))} uses more neighbours '
                   f'than the {counts.min()} training images of the smallest '
                   'class, so other classes outvote it; use a smaller '
                   'eval.knn_k or more training images')
  return notes


def load_all(names, load, on_skip) -> list:
  """``load(name, optional)`` for each (name, optional) of ``names``; an
  optional dataset that cannot be loaded is left out and handed to
  ``on_skip(name, error)`` (its note), a required one raises."""
  out = []
  for name, optional in names:
    try:
      out.append(load(name, optional))
    except UserError as e:
      if not optional:
        raise
      on_skip(name, e)
  return out
