"""Transformation sets from real images, for the invariance score.

Each builder returns ``(images uint8 [M, S, S, 3], set_ids [M], class_ids [M])``:
one *set* is one object seen under several transformations, its class the
object's category (for video viewpoint sets, see
:func:`ssl_pairs.evals.invariance.viewpoint_sets`). Every builder is seeded.

* occlusion — grey rectangles inside the object's box covering increasing
  fractions of it (needs boxes: Tiny-ImageNet train);
* background — the boxed object pasted onto other images (other classes);
* illumination colour — colour casts (per-channel gains);
* illumination direction — shading ramps from several directions;
* instance — different images of one class.
"""

from typing import Sequence, Tuple

import numpy as np

from ssl_pairs.errors import UserError

Sets = Tuple[np.ndarray, np.ndarray, np.ndarray]

COLOUR_CASTS = ((1.0, 1.0, 1.0), (1.25, 1.0, 0.75), (0.75, 1.0, 1.25),
                (1.0, 1.25, 0.8), (1.2, 0.8, 1.2))


def _pick(source, n: int, seed: int) -> np.ndarray:
  rng = np.random.default_rng([seed, 0x5E7])
  return np.sort(rng.choice(len(source), min(n, len(source)), replace=False))


def _boxes(source, idx) -> np.ndarray:
  """Boxes (x0, y0, x1, y1) in the source's pixels, inclusive."""
  if source.boxes is None:
    raise UserError(f'{source.name} has no object boxes; occlusion and '
                    'background sets need them (use tiny_imagenet train).')
  scale = source.image_size / 64.0  # Tiny-ImageNet boxes are in 64-px units.
  b = np.round(source.boxes[idx] * scale).astype(int)
  return np.clip(b, 0, source.image_size - 1)


def _pack(images, per_set: int, labels) -> Sets:
  images = np.stack(images).astype(np.uint8)
  n_sets = len(images) // per_set
  set_ids = np.repeat(np.arange(n_sets), per_set)
  return images, set_ids, np.repeat(np.asarray(labels), per_set)


def occlusion_sets(source, n: int = 200,
                   fractions: Sequence[float] = (0.0, 0.2, 0.4, 0.6),
                   seed: int = 0) -> Sets:
  """Each object with a grey rectangle covering ``f`` of its box area."""
  idx = _pick(source, n, seed)
  boxes = _boxes(source, idx)
  rng = np.random.default_rng([seed, 0x0CC])
  out = []
  for i, (x0, y0, x1, y1) in zip(idx, boxes):
    image = source[int(i)]
    w, h = x1 - x0 + 1, y1 - y0 + 1
    for f in fractions:
      img = image.copy()
      if f > 0:
        # A rectangle of the box's aspect covering f of its area.
        ow, oh = max(1, int(round(w * np.sqrt(f)))), max(1, int(round(
            h * np.sqrt(f))))
        ox = x0 + int(rng.integers(0, w - ow + 1))
        oy = y0 + int(rng.integers(0, h - oh + 1))
        img[oy:oy + oh, ox:ox + ow] = 128
      out.append(img)
  return _pack(out, len(fractions), source.labels[idx])


def background_sets(source, n: int = 200, backgrounds: int = 4,
                    seed: int = 0) -> Sets:
  """Each boxed object on its own image and pasted onto ``backgrounds``
  images of other classes (same position)."""
  idx = _pick(source, n, seed)
  boxes = _boxes(source, idx)
  rng = np.random.default_rng([seed, 0xB6])
  out = []
  for i, (x0, y0, x1, y1) in zip(idx, boxes):
    image = source[int(i)]
    out.append(image)
    others = np.nonzero(source.labels != source.labels[i])[0]
    for j in rng.choice(others, backgrounds, replace=False):
      img = source[int(j)].copy()
      img[y0:y1 + 1, x0:x1 + 1] = image[y0:y1 + 1, x0:x1 + 1]
      out.append(img)
  return _pack(out, backgrounds + 1, source.labels[idx])


def illumination_colour_sets(source, n: int = 200, seed: int = 0) -> Sets:
  """Each image under the colour casts of ``COLOUR_CASTS``."""
  idx = _pick(source, n, seed)
  out = []
  for i in idx:
    x = source[int(i)].astype(np.float32)
    for gains in COLOUR_CASTS:
      out.append(np.clip(x * np.asarray(gains, np.float32), 0, 255))
  return _pack(out, len(COLOUR_CASTS), source.labels[idx])


def illumination_direction_sets(source, n: int = 200, directions: int = 6,
                                strength: float = 0.6, seed: int = 0) -> Sets:
  """Each image lit by a linear ramp (1 ± strength/2) from ``directions``
  evenly spaced directions."""
  idx = _pick(source, n, seed)
  s = source.image_size
  yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / max(s - 1, 1) - 0.5
  ramps = []
  for k in range(directions):
    a = 2 * np.pi * k / directions
    ramps.append(1.0 + strength * (np.cos(a) * xx + np.sin(a) * yy))
  out = []
  for i in idx:
    x = source[int(i)].astype(np.float32)
    for ramp in ramps:
      out.append(np.clip(x * ramp[..., None], 0, 255))
  return _pack(out, directions, source.labels[idx])


def instance_sets(source, sets_per_class: int = 4, per_set: int = 5,
                  seed: int = 0) -> Sets:
  """Sets of ``per_set`` different images of one class."""
  rng = np.random.default_rng([seed, 0x1A5])
  out, labels = [], []
  for c in np.unique(source.labels):
    members = rng.permutation(np.nonzero(source.labels == c)[0])
    for k in range(min(sets_per_class, len(members) // per_set)):
      out += [source[int(j)] for j in members[k * per_set:(k + 1) * per_set]]
      labels.append(c)
  if not labels:
    raise UserError(f'No class of {source.name} has {per_set} images for an '
                    'instance set.')
  return _pack(out, per_set, labels)


BUILDERS = {
    'occlusion': occlusion_sets,
    'background': background_sets,
    'illumination_colour': illumination_colour_sets,
    'illumination_direction': illumination_direction_sets,
    'instance': lambda source, seed=0: instance_sets(source, seed=seed),
}
