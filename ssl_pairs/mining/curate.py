"""Automatically curated semantic pairs: labels choose the class, a prior
chooses the partner.

The semantic-pairs paper curated its 29,359 pairs by hand so that both images
clearly show the same kind of object, and names that cost as its limitation.
A curated pair file here is built from the same images as the random PS set
(``build_pairs --match=images``: P images per class, each an anchor once and a
partner once, so every image is used at most twice), by a spec:

* ``prior:pixels``, ``prior:autoencoder``, ``prior:checkpoint:<workdir>``,
  ``prior:npy:<path>`` — each image's partner is its nearest same-class
  neighbour in that embedding (:mod:`ssl_pairs.mining.priors`, squared L2),
  among the images not yet taken as a partner: anchors are served in order of
  how close their nearest neighbour is, so the most confident pairs are made
  first; no image is its own partner.
* ``boxes:<min_fraction>`` — only images whose object box covers at least
  that fraction of the image are kept (Tiny-ImageNet train's boxes), and the
  kept images of a class are paired as the random PS set pairs its images.

:func:`curate` returns the pairs and a report: per class, the mean prior
distance of the chosen pairs against the random same-class pairs of the same
images (for a prior spec), and the fraction of images kept.
"""

import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np

from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data.pair_sets import PairSet
from ssl_pairs.errors import UserError
from ssl_pairs.mining import priors

SPECS = ('prior:pixels', 'prior:autoencoder', 'prior:checkpoint:<workdir>',
         'prior:npy:<path>', 'boxes:<min_fraction>')
BOX_IMAGE_SIDE = 64  # Tiny-ImageNet's boxes are in its original 64-px units.


@dataclasses.dataclass
class Spec:
  kind: str  # 'prior' or 'boxes'
  prior: str = ''
  min_fraction: float = 0.0


def parse_spec(spec: str) -> Spec:
  """``prior:<prior>`` or ``boxes:<fraction>``; one sentence when bad."""
  kind, _, rest = str(spec).partition(':')
  if kind == 'prior' and rest:
    if rest.split(':')[0] not in ('pixels', 'autoencoder', 'checkpoint', 'npy',
                                  'random_init'):
      raise UserError(f'--curate={spec!r} names an unknown prior {rest!r}; '
                      f'use one of {", ".join(SPECS)}.')
    return Spec('prior', prior=rest)
  if kind == 'boxes':
    try:
      fraction = float(rest)
    except ValueError:
      fraction = -1.0
    if not 0 < fraction <= 1:
      raise UserError(f'--curate={spec!r} needs a box fraction in (0, 1], '
                      'e.g. boxes:0.3.')
    return Spec('boxes', min_fraction=fraction)
  raise UserError(f'--curate={spec!r} is not a curation spec; use one of '
                  f'{", ".join(SPECS)}.')


def nearest_available_partners(x: np.ndarray) -> np.ndarray:
  """partner[i] for the rows of x [n, d]: each row's nearest other row
  (squared L2) among the rows not yet taken as a partner.

  Anchors are served by increasing distance to their nearest neighbour; each
  row is taken as a partner exactly once, so with the anchor role every row
  is used twice, as in the random PS set. When only the anchor itself is
  left, it swaps partners with the previous anchor (who then takes it).
  """
  n = len(x)
  if n < 2:
    raise UserError('A class needs at least 2 images for semantic pairs.')
  x = np.asarray(x, np.float64)
  sq = (x * x).sum(1)
  d = sq[:, None] + sq[None, :] - 2 * x @ x.T
  np.fill_diagonal(d, np.inf)
  order = np.argsort(d.min(1), kind='stable')
  taken = np.zeros(n, bool)
  partner = np.full(n, -1, np.int64)
  for k, i in enumerate(order):
    free = np.where(taken, np.inf, d[i])
    j = int(np.argmin(free))
    if not np.isfinite(free[j]):  # Only i itself is left: swap.
      prev = int(order[k - 1])
      partner[i], partner[prev] = partner[prev], i
      continue
    partner[i] = j
    taken[j] = True
  return partner


def box_fractions(source) -> np.ndarray:
  """Area of each image's object box as a fraction of the image."""
  if source.boxes is None:
    raise UserError(f'--curate=boxes:… needs object boxes, which '
                    f'{source.name} {source.split} does not have; use '
                    'tiny_imagenet (train), or a prior:… spec.')
  b = np.asarray(source.boxes, np.float64)
  area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
  return area / float(BOX_IMAGE_SIDE * BOX_IMAGE_SIDE)


def curate(source, spec: str, classes: str, pairs_per_class: int, seed: int,
           prior_config=None, model_config=None,
           cache_dir: Optional[str] = None) -> Tuple[PairSet, Dict]:
  """(curated PS pair set, report) over the random PS set's images.

  Args:
    source: labelled ImageSource.
    spec: see the module docstring.
    classes, pairs_per_class, seed: as ``build_pairs`` (``--match=images``).
    prior_config: ``config.data.gps``-like settings of the prior (pixel size,
      PCA, autoencoder); needed by the prior specs.
    model_config: the backbone, for ``prior:checkpoint`` / ``random_init``.
    cache_dir: where the prior embedding is cached.
  """
  parsed = parse_spec(spec)
  chosen = pairs_lib.select_classes(source.labels, source.class_names, classes,
                                    seed, source.class_ids)
  images = pairs_lib.augmented_images_from_labels(source.labels, chosen,
                                                  pairs_per_class, seed)
  random_a, random_p = pairs_lib.semantic_pairs_from_labels(
      source.labels, chosen, pairs_per_class, seed, source.class_names,
      'images')
  labels = source.labels
  report: Dict = {'spec': spec, 'classes': {}}
  anchors: List[np.ndarray] = []
  partners: List[np.ndarray] = []
  if parsed.kind == 'prior':
    if prior_config is None:
      raise ValueError('a prior spec needs prior_config (config.data.gps).')
    embedding = np.asarray(priors.cached_prior(
        parsed.prior, source, prior_config, model_config, seed, cache_dir),
                           np.float64)
    for c in chosen:
      pool = images[labels[images] == c]
      partner = pool[nearest_available_partners(embedding[pool])]
      anchors.append(pool)
      partners.append(partner)
      rand = random_p[labels[random_a] == c]
      rand_a = random_a[labels[random_a] == c]
      dist = lambda a, b: float(np.mean(((embedding[a] - embedding[b])**2
                                         ).sum(1)))
      report['classes'][source.class_names[c]] = {
          'kept_fraction': 1.0, 'pairs': int(len(pool)),
          'mean_distance_curated': dist(pool, partner),
          'mean_distance_random': dist(rand_a, rand)}
  else:
    fraction = box_fractions(source)
    for c in chosen:
      pool = images[labels[images] == c]
      kept = pool[fraction[pool] >= parsed.min_fraction]
      entry = {'kept_fraction': float(len(kept) / len(pool)),
               'pairs': int(len(kept)),
               'mean_box_fraction_kept': float(fraction[kept].mean())
                                         if len(kept) else float('nan')}
      report['classes'][source.class_names[c]] = entry
      if len(kept) < 2:
        continue  # Too few clear images: the class is left out.
      k = len(kept)
      i = np.arange(k)
      anchors.append(kept)
      partners.append(kept[(i + 1) % k])
  if not anchors:
    raise UserError(f'--curate={spec!r} kept fewer than 2 images in every '
                    'class; lower the box fraction.')
  a, p = np.concatenate(anchors), np.concatenate(partners)
  per_class = report['classes'].values()
  report.update(
      pairs=int(len(a)), images_kept=int(len(np.unique(a))),
      images_offered=int(len(images)),
      classes_kept=int(sum(1 for e in per_class if e['pairs'] >= 2)))
  if parsed.kind == 'prior':
    report['mean_distance_curated'] = float(np.mean(
        [e['mean_distance_curated'] for e in per_class]))
    report['mean_distance_random'] = float(np.mean(
        [e['mean_distance_random'] for e in per_class]))
  return PairSet(a, p), report
