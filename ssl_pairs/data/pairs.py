"""Pair sources: which two images form each positive pair.

A pair source is index-level: item ``i`` of an epoch maps to ``(anchor,
partner)`` indices into an :class:`~ssl_pairs.data.sources.ImageSource`. Views
are made afterwards by seeded transforms, so the pairs and the crops are both
reproducible from the seed.

Canonical names (``config.data.pairs``):

* ``semantic`` — a fixed set of pairs of two *different* images of the same
  class, built once from labels with a seed (C classes × P pairs per class), as
  the paper's curated set; ``resample_partner=True`` redraws the partner at
  every epoch (the label-supervised variant).
* ``augmented`` — each image's partner is the same image; the partner then gets
  the "pair transform" (crop, rotation, flip, colour jitter) before both go
  through the standard view pipeline.
* ``pair_file`` — a curated CSV ``anchor,partner,class`` (paths relative to the
  dataset root, or integer indices), such as ``build_pairs`` writes.
* ``gps`` — GPS-SSL: the partner is drawn from the image's k nearest
  neighbours in a prior embedding (no labels).
* ``spps`` — SPPS: an augmented pair plus the anchor's *semantic positive set*
  (neighbours in a prior embedding with similarity ≥ δ, at most k), carried in
  the batch as extra positives (no labels).
* ``temporal`` — frames i and i+k of one shot of a video
  (:mod:`ssl_pairs.data.video`), optionally a tracked region of each.

The pair transform (``data.pair_transform``) makes an *augmented pair*: it is
applied to the partner of a pair whose two images are the same image, in the
pair sets that define such pairs — ``augmented``, and a pair file's rows that
name one image twice (how the augmented arm of a comparison is written). The
mined and temporal sources never get it (``PairSet.augment_self_pairs`` is
False): a GPS self-neighbour or a one-frame shot is paired with itself by
accident of the data, and their papers use only the standard views.
"""

import csv
import json
import os
from typing import Optional, Sequence

import numpy as np

from ssl_pairs.data.pair_sets import PairSet
from ssl_pairs.errors import UserError, unknown_name_error

PAIR_SOURCES = ('semantic', 'augmented', 'pair_file', 'gps', 'spps',
                'temporal')
MINED_SOURCES = ('gps', 'spps')  # Built by ssl_pairs.mining.tables.
RESOURCES = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                         'resources')


def select_classes(labels: np.ndarray, class_names: Sequence[str],
                   classes: str, seed: int,
                   class_ids: Optional[Sequence[str]] = None) -> np.ndarray:
  """Class indices chosen by ``classes``: 'all', a count, or a class-list file.

  A count picks that many classes at random with ``seed``; a file lists one
  class per line, by name or by id such as a wnid (blank lines and ``#``
  comments ignored).
  """
  present = np.unique(labels)
  spec = str(classes).strip()
  if spec in ('', 'all'):
    return present
  if spec.isdigit():
    count = int(spec)
    if not 0 < count <= len(present):
      raise UserError(f'data.classes={count} must be between 1 and the '
                      f'{len(present)} classes in the data.')
    rng = np.random.default_rng([seed, 0xC1A55])
    return np.sort(rng.choice(present, count, replace=False))
  builtin = os.path.join(RESOURCES, f'{spec}.txt')
  if not os.path.isfile(spec) and os.path.isfile(builtin):
    spec = builtin
  if not os.path.isfile(spec):
    raise UserError(f"data.classes={spec!r} is neither 'all', a count, a "
                    'class-list file, nor a list in ssl_pairs/resources.')
  with open(spec) as f:
    wanted = [line.split('#')[0].strip() for line in f]
  wanted = [w for w in wanted if w]
  lookup = {name: i for i, name in enumerate(class_names)}
  lookup.update({cid: i for i, cid in enumerate(class_ids or ())})
  missing = [w for w in wanted if w not in lookup]
  if missing:
    raise UserError(f'Class-list file {spec} names {len(missing)} classes not '
                    f'in the data (first: {missing[0]!r}); use names from '
                    'the dataset.')
  return np.asarray(sorted({lookup[w] for w in wanted}), np.int64)


def _members_by_class(labels, classes, seed):
  """{class: seeded permutation of its image indices}."""
  out = {}
  for c in classes:
    members = np.nonzero(labels == c)[0]
    rng = np.random.default_rng([seed, int(c), 0x5E7])
    out[int(c)] = members[rng.permutation(len(members))]
  return out


def semantic_pairs_from_labels(labels: np.ndarray, classes: np.ndarray,
                               pairs_per_class: int, seed: int,
                               class_names: Sequence[str] = (),
                               match: str = 'pairs'):
  """Fixed semantic pairs: C classes × P pairs of two different images.

  Args:
    labels: int [N] class of every image.
    classes: class indices to use.
    pairs_per_class: P; 0 means one pair per image of the class.
    seed: seed of the selection.
    class_names: for error messages.
    match: 'pairs' — pairs use 2P distinct images where the class has them
      (every image in at most one pair); 'images' — the pairs are made among
      the same P images that the matched augmented set uses (each of them is an
      anchor once and a partner once).

  Returns:
    (anchors, partners) int64 arrays of C·P indices, class by class.
  """
  anchors, partners = [], []
  for c, members in _members_by_class(labels, classes, seed).items():
    n = len(members)
    if n < 2:
      name = class_names[c] if len(class_names) > c else c
      raise UserError(f'Class {name!r} has {n} image; semantic pairs need at '
                      'least two images per class, so add images or drop '
                      'the class.')
    p = pairs_per_class or n
    if match == 'pairs' and 2 * p <= n:
      anchors.append(members[:p])
      partners.append(members[p:2 * p])
      continue
    pool = members[:min(p, n)] if match == 'images' else members
    k = len(pool)
    if k < 2:
      raise UserError(f'pairs_per_class={p} leaves one image in a class; '
                      'semantic pairs need at least 2.')
    i = np.arange(p)
    # Anchor i cycles through the pool; its partner is a different pool image
    # (offset 1, 2, ... on later cycles), so no pair is an image with itself.
    offset = 1 + (i // k) % (k - 1)
    anchors.append(pool[i % k])
    partners.append(pool[(i + offset) % k])
  return np.concatenate(anchors), np.concatenate(partners)


def augmented_images_from_labels(labels: np.ndarray, classes: np.ndarray,
                                 images_per_class: int, seed: int):
  """The images of the matched augmented set: P per class (0 = all).

  Uses the same seeded per-class order as :func:`semantic_pairs_from_labels`,
  so with ``match='pairs'`` these are exactly the semantic anchors, and with
  ``match='images'`` exactly the images the semantic pairs are made of.
  """
  chosen = []
  for members in _members_by_class(labels, classes, seed).values():
    p = images_per_class or len(members)
    if p > len(members):
      raise UserError(f'images_per_class={p} exceeds the {len(members)} images '
                      'of a class; lower data.pairs_per_class.')
    chosen.append(members[:p])
  return np.concatenate(chosen)


def read_pair_file(path: str, source) -> PairSet:
  """Reads a CSV of ``anchor,partner[,class]`` rows into a PairSet.

  Anchors and partners are paths relative to the dataset root (as in
  ``source.paths``) or integer indices into the source. The optional class
  column is checked against the images' labels (by name or index).
  """
  if not os.path.isfile(path):
    raise UserError(f'Pair file {path} does not exist; build one with '
                    '`python -m ssl_pairs.tools.build_pairs`.')
  with open(path, newline='') as f:
    rows = [r for r in csv.reader(f) if r and not r[0].startswith('#')]
  if rows and rows[0][0].strip().lower() == 'anchor':
    rows = rows[1:]
  if not rows:
    raise UserError(f'Pair file {path} has no pairs; it needs rows '
                    '"anchor,partner[,class]".')
  lookup = {p: i for i, p in enumerate(source.paths)} if source.paths else {}
  names = {n: i for i, n in enumerate(source.class_names)}
  names.update({n: i for i, n in enumerate(source.class_ids or ())})

  def to_index(token):
    token = token.strip()
    if token in lookup:
      return lookup[token]
    if token.isdigit():
      i = int(token)
      if 0 <= i < len(source):
        return i
    return None

  anchors, partners, missing, seen = [], [], [], {}
  for n, row in enumerate(rows, start=1):
    if len(row) < 2:
      raise UserError(f'Pair file {path} row {n} has {len(row)} column; each '
                      'row needs anchor,partner[,class].')
    a, b = to_index(row[0]), to_index(row[1])
    for token, idx in ((row[0], a), (row[1], b)):
      if idx is None:
        missing.append((n, token.strip()))
    if a is None or b is None:
      continue
    class_of = lambda i: source.class_names[source.labels[i]]
    if source.labels[a] != source.labels[b]:
      raise UserError(f'Pair file {path} row {n} pairs {row[0].strip()} '
                      f'(class {class_of(a)!r}) with {row[1].strip()} (class '
                      f'{class_of(b)!r}); a positive pair needs two images of '
                      'one class, so fix or remove the row.')
    if len(row) >= 3 and row[2].strip():
      cls = row[2].strip()
      want = names.get(cls, int(cls) if cls.isdigit() else None)
      if want is None:
        raise UserError(f'Pair file {path} row {n} names unknown class '
                        f'{cls!r}; use a class of {source.name}.')
      if source.labels[a] != want:
        raise UserError(f'Pair file {path} row {n} says class {cls!r} but '
                        f'{row[0].strip()} and {row[1].strip()} are in class '
                        f'{class_of(a)!r}; fix the row.')
    if (a, b) in seen:
      raise UserError(f'Pair file {path} row {n} repeats row {seen[(a, b)]} '
                      f'({row[0].strip()}, {row[1].strip()}); remove the '
                      'duplicate so no pair counts twice.')
    seen[(a, b)] = n
    anchors.append(a)
    partners.append(b)
  if missing:
    row, token = missing[0]
    raise UserError(f'Pair file {path} names {len(missing)} image'
                    f'{"s" if len(missing) > 1 else ""} not in {source.name} '
                    f'{source.split} (first: row {row}, {token!r}); paths must '
                    f'be relative to {source.root}.')
  return PairSet(np.asarray(anchors), np.asarray(partners))


def write_pair_file(path: str, pairs: PairSet, source) -> None:
  """Writes ``anchor,partner,class`` rows (paths when the source has them).

  Atomically (a temporary file, then a rename), so a run reading the file
  while a launcher rebuilds it never sees it half written."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  name = (lambda i: source.paths[i]) if source.paths else str
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['anchor', 'partner', 'class'])
    for a, b in zip(pairs.anchors, pairs.partners):
      w.writerow([name(a), name(b), source.class_names[source.labels[a]]])
  os.replace(tmp, path)


def build_pair_set(data_config, source) -> PairSet:
  """The pair set named by ``data_config.pairs`` over ``source``, for every
  source this layer knows: labels, pair files and video frames. The mined
  sources (``gps``, ``spps``) need an embedding; they are built by
  :func:`ssl_pairs.mining.tables.build_pair_set`, which handles every source.
  """
  kind = data_config.pairs
  seed = data_config.pair_seed
  if kind in MINED_SOURCES:
    raise ValueError(f"data.pairs={kind!r} is a mined source; build it with "
                     "ssl_pairs.mining.tables.build_pair_set.")
  if kind == 'temporal':
    from ssl_pairs.data import video  # pylint: disable=g-import-not-at-top
    return video.temporal_pair_set(data_config, source)
  if kind == 'pair_file':
    if not data_config.pair_file:
      raise UserError("data.pairs='pair_file' needs data.pair_file=<csv path>.")
    return read_pair_file(data_config.pair_file, source)
  if kind not in PAIR_SOURCES:
    raise unknown_name_error('pair source (data.pairs)', kind, PAIR_SOURCES)
  if data_config.pairs_per_class < 0:
    raise UserError(f'data.pairs_per_class={data_config.pairs_per_class} must '
                    'be 0 (all images) or positive.')
  classes = select_classes(source.labels, source.class_names,
                           data_config.classes, seed, source.class_ids)
  if kind == 'semantic':
    anchors, partners = semantic_pairs_from_labels(
        source.labels, classes, data_config.pairs_per_class, seed,
        source.class_names, data_config.match)
    return PairSet(anchors, partners, labels=source.labels,
                   resample_partner=data_config.resample_partner, seed=seed)
  images = augmented_images_from_labels(
      source.labels, classes, data_config.pairs_per_class, seed)
  return PairSet(images, images)


def summarize_pairs(source, pair_set: PairSet) -> dict:
  """Counts describing a pair set (for build_pairs and logs)."""
  anchors, partners = pair_set.anchors, pair_set.partners
  used = np.unique(np.concatenate([anchors, partners]))
  same_class = np.mean(source.labels[anchors] == source.labels[partners])
  return {'pairs': int(len(anchors)), 'distinct_images': int(len(used)),
          'classes': int(len(np.unique(source.labels[anchors]))),
          'same_image_pairs': int(np.sum(anchors == partners)),
          'same_class_fraction': float(same_class)}


def build_matched_sets(source, classes: str, pairs_per_class: int, match: str,
                       seed: int, out_dir: str) -> dict:
  """Writes matched PS and PA pair files (see ``ssl_pairs.tools.build_pairs``).

  Args:
    source: labelled ImageSource to draw the images from.
    classes: 'all', a count, a class-list file or a shipped list name.
    pairs_per_class: P.
    match: 'pairs' (PS uses 2P images per class where available, PA P) or
      'images' (both use the same P images per class).
    seed: seed of the class and image selection.
    out_dir: where semantic_pairs.csv, augmented_pairs.csv and summary.json go.

  Returns:
    The summary dict (also written to summary.json).
  """
  if match not in ('pairs', 'images'):
    raise unknown_name_error('match', match, ('pairs', 'images'))
  chosen = select_classes(source.labels, source.class_names, classes, seed,
                          source.class_ids)
  anchors, partners = semantic_pairs_from_labels(
      source.labels, chosen, pairs_per_class, seed, source.class_names, match)
  images = augmented_images_from_labels(source.labels, chosen, pairs_per_class,
                                        seed)
  sets = {'semantic': PairSet(anchors, partners),
          'augmented': PairSet(images, images)}
  os.makedirs(out_dir, exist_ok=True)
  files = {}
  for name, pair_set in sets.items():
    files[name] = os.path.join(out_dir, f'{name}_pairs.csv')
    write_pair_file(files[name], pair_set, source)
  summary = {'dataset': source.name, 'split': source.split,
             'root': source.root,
             'classes': [source.class_names[c] for c in chosen],
             'pairs_per_class': pairs_per_class, 'match': match, 'seed': seed,
             **{name: summarize_pairs(source, s) for name, s in sets.items()},
             'files': files}
  with open(os.path.join(out_dir, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  return summary
