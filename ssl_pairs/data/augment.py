"""Host-side view transforms (numpy + PIL), seeded per record.

Each transform follows torchvision's definition (the one our users' PyTorch
baselines use): RandomResizedCrop's sampling of scale and log-ratio with ten
attempts and a centre-crop fallback, ColorJitter's four ops in random order,
luma grayscale (0.299, 0.587, 0.114), Gaussian blur with σ ~ U(0.1, 2), and
solarize at 128. A view is a pure function of (image, numpy Generator, spec),
so the same seed gives the same crops.

Presets (``config.data.augment.preset``; docs/methods.md):

* ``strong`` — crop (0.08, 1), flip 0.5, colour jitter p 0.8, grayscale 0.2,
  blur p 0.5 above 32 px (off at ≤ 32 px), on both views;
* ``asymmetric`` — strong, with blur 1.0 / 0.1 and solarize 0 / 0.2 on view
  1 / 2 (BYOL, DINO);
* ``weak_rrc`` — crop and flip; ``weak`` — flip only; ``none`` — nothing.

``drop`` removes transforms by name for ablations (``crop``, ``flip``,
``color_jitter``, ``grayscale``, ``blur``, ``solarize``, ``rotation``).
"""

import dataclasses
import math
from typing import Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageFilter

from ssl_pairs.errors import UserError, unknown_name_error

PRESETS = ('strong', 'asymmetric', 'weak_rrc', 'weak', 'none')
TRANSFORMS = ('crop', 'flip', 'rotation', 'color_jitter', 'grayscale', 'blur',
              'solarize')
PAIR_TRANSFORMS = ('default', 'none')


@dataclasses.dataclass(frozen=True)
class ViewSpec:
  """Parameters of one view's random transform; a probability 0 disables it."""
  crop: bool = False
  crop_scale: Tuple[float, float] = (0.08, 1.0)
  crop_ratio: Tuple[float, float] = (3 / 4, 4 / 3)
  flip_prob: float = 0.0
  rotation_prob: float = 0.0
  rotation_degrees: float = 0.0
  jitter_prob: float = 0.0
  jitter: Tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)
  gray_prob: float = 0.0
  blur_prob: float = 0.0
  blur_sigma: Tuple[float, float] = (0.1, 2.0)
  solarize_prob: float = 0.0

  def without(self, names: Sequence[str]) -> 'ViewSpec':
    """This spec with the named transforms switched off."""
    off = {'crop': dict(crop=False), 'flip': dict(flip_prob=0.0),
           'rotation': dict(rotation_prob=0.0),
           'color_jitter': dict(jitter_prob=0.0),
           'grayscale': dict(gray_prob=0.0), 'blur': dict(blur_prob=0.0),
           'solarize': dict(solarize_prob=0.0)}
    changes = {}
    for n in names:
      changes.update(off[n])
    return dataclasses.replace(self, **changes)


def parse_drop(drop: str) -> Tuple[str, ...]:
  """Parses a comma list of transform names; 'jitter' means 'color_jitter'."""
  names = []
  for token in str(drop or '').split(','):
    token = token.strip().lower()
    if not token:
      continue
    token = {'jitter': 'color_jitter', 'colour_jitter': 'color_jitter',
             'gray': 'grayscale', 'greyscale': 'grayscale'}.get(token, token)
    if token not in TRANSFORMS:
      raise unknown_name_error('transform in data.augment.drop', token,
                               TRANSFORMS)
    names.append(token)
  return tuple(names)


def view_specs(aug_config, image_size: int) -> Tuple[ViewSpec, ViewSpec]:
  """The two views' specs for ``config.data.augment`` at ``image_size``."""
  preset = aug_config.preset
  if preset not in PRESETS:
    raise unknown_name_error('augmentation preset', preset, PRESETS)
  lo = aug_config.crop_min_scale
  if not 0 < lo <= 1:
    raise UserError(f'data.augment.crop_min_scale={lo} must be in (0, 1].')
  blur = aug_config.blur_prob
  if blur < 0:  # auto: blur hurts at 32 px (solo-learn's CIFAR setting).
    blur = 0.5 if image_size > 32 else 0.0
  jitter = tuple(float(v) for v in aug_config.color_jitter)
  strong = ViewSpec(crop=True, crop_scale=(lo, 1.0), flip_prob=0.5,
                    jitter_prob=aug_config.jitter_prob, jitter=jitter,
                    gray_prob=aug_config.gray_prob, blur_prob=blur)
  if preset == 'strong':
    specs = (strong, strong)
  elif preset == 'asymmetric':
    blur1, blur2 = (1.0, 0.1) if image_size > 32 else (0.0, 0.0)
    specs = (dataclasses.replace(strong, blur_prob=blur1),
             dataclasses.replace(strong, blur_prob=blur2, solarize_prob=0.2))
  elif preset == 'weak_rrc':
    weak = ViewSpec(crop=True, crop_scale=(lo, 1.0), flip_prob=0.5)
    specs = (weak, weak)
  elif preset == 'weak':
    specs = (ViewSpec(flip_prob=0.5),) * 2
  else:
    specs = (ViewSpec(),) * 2
  drop = parse_drop(aug_config.drop)
  return specs[0].without(drop), specs[1].without(drop)


def local_crop_spec(aug_config, image_size: int) -> Tuple[int, int,
                                                         Optional[ViewSpec]]:
  """(number, size, spec) of the multi-crop local views (DINO).

  Local views are small crops (scale ``local_crop_min_scale`` to
  ``crop_min_scale``) with the second view's photometric transforms, blur at
  p 0.5 above 32 px; ``(0, 0, None)`` when ``local_crops`` is 0.
  """
  n = aug_config.local_crops
  if n < 0:
    raise UserError(f'data.augment.local_crops={n} must be 0 (off) or '
                    'positive.')
  if n == 0:
    return 0, 0, None
  size = aug_config.local_crop_size or max(8, round(image_size * 3 / 8))
  if not 0 < size <= image_size:
    raise UserError(f'data.augment.local_crop_size={size} must be in (0, '
                    f'{image_size}] (the global view size).')
  lo, hi = aug_config.local_crop_min_scale, aug_config.crop_min_scale
  if not 0 < lo < hi:
    raise UserError(f'data.augment.local_crop_min_scale={lo} must be '
                    f'positive and below crop_min_scale={hi} (local crops are '
                    'the small ones).')
  second = view_specs(aug_config, image_size)[1]
  spec = dataclasses.replace(
      second, crop=True, crop_scale=(lo, hi), solarize_prob=0.0,
      blur_prob=0.5 if image_size > 32 and second.blur_prob else 0.0)
  return n, size, spec


def pair_transform_spec(name: str, drop: str = '') -> Optional[ViewSpec]:
  """The transform that turns an image into its augmented-pair partner.

  'default' is the paper's pair transform (crop, rotation, flip, colour
  jitter); the crop is gentler (scale 0.3–1) and the rotation small (±20°)
  because the standard view pipeline still runs on top of it. ``drop``
  (``data.augment.drop``) removes transforms here too, so an ablation such
  as crop-only holds for the partner as well as for the views.
  """
  if name == 'none':
    return None
  if name != 'default':
    raise unknown_name_error('data.pair_transform', name, PAIR_TRANSFORMS)
  return ViewSpec(crop=True, crop_scale=(0.3, 1.0), flip_prob=0.5,
                  rotation_prob=1.0, rotation_degrees=20.0, jitter_prob=0.8,
                  jitter=(0.4, 0.4, 0.4, 0.1)).without(parse_drop(drop))


def random_resized_crop_box(rng: np.random.Generator, height: int, width: int,
                            scale, ratio):
  """torchvision's RandomResizedCrop.get_params: (top, left, h, w)."""
  area = height * width
  log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
  for _ in range(10):
    target_area = area * rng.uniform(scale[0], scale[1])
    aspect = math.exp(rng.uniform(*log_ratio))
    w = int(round(math.sqrt(target_area * aspect)))
    h = int(round(math.sqrt(target_area / aspect)))
    if 0 < w <= width and 0 < h <= height:
      top = int(rng.integers(0, height - h + 1))
      left = int(rng.integers(0, width - w + 1))
      return top, left, h, w
  in_ratio = width / height
  if in_ratio < min(ratio):
    w, h = width, int(round(width / min(ratio)))
  elif in_ratio > max(ratio):
    h, w = height, int(round(height * max(ratio)))
  else:
    w, h = width, height
  return (height - h) // 2, (width - w) // 2, h, w


def _grayscale(x: np.ndarray) -> np.ndarray:
  return x @ np.asarray([0.299, 0.587, 0.114], np.float32)


def _rgb_to_hsv(x):
  r, g, b = x[..., 0], x[..., 1], x[..., 2]
  maxc, minc = x.max(-1), x.min(-1)
  v = maxc
  delta = maxc - minc
  s = np.where(maxc > 0, delta / np.maximum(maxc, 1e-12), 0.0)
  safe = np.maximum(delta, 1e-12)
  rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
  h = np.where(maxc == r, bc - gc, np.where(maxc == g, 2.0 + rc - bc,
                                            4.0 + gc - rc))
  h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
  return h, s, v


def _hsv_to_rgb(h, s, v):
  i = np.floor(h * 6.0)
  f = h * 6.0 - i
  p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
  i = i.astype(np.int32) % 6
  r = np.choose(i, [v, q, p, p, t, v])
  g = np.choose(i, [t, v, v, q, p, p])
  b = np.choose(i, [p, p, t, v, v, q])
  return np.stack([r, g, b], -1)


def color_jitter(x: np.ndarray, rng: np.random.Generator,
                 strength) -> np.ndarray:
  """torchvision ColorJitter on float [0, 1] RGB: four ops in random order."""
  b, c, s, h = strength
  for op in rng.permutation(4):
    if op == 0 and b > 0:
      x = np.clip(x * rng.uniform(max(0., 1 - b), 1 + b), 0, 1)
    elif op == 1 and c > 0:
      mean = _grayscale(x).mean()
      f = rng.uniform(max(0., 1 - c), 1 + c)
      x = np.clip(f * x + (1 - f) * mean, 0, 1)
    elif op == 2 and s > 0:
      f = rng.uniform(max(0., 1 - s), 1 + s)
      x = np.clip(f * x + (1 - f) * _grayscale(x)[..., None], 0, 1)
    elif op == 3 and h > 0:
      hh, ss, vv = _rgb_to_hsv(x)
      x = _hsv_to_rgb((hh + rng.uniform(-h, h)) % 1.0, ss, vv)
  return x.astype(np.float32)


def apply_view(image: np.ndarray, rng: np.random.Generator, spec: ViewSpec,
               size: int) -> np.ndarray:
  """One random view of a uint8 [H, W, 3] image → uint8 [size, size, 3]."""
  pil = Image.fromarray(image)
  height, width = image.shape[:2]
  if spec.rotation_prob and rng.random() < spec.rotation_prob:
    angle = rng.uniform(-spec.rotation_degrees, spec.rotation_degrees)
    pil = pil.rotate(angle, resample=Image.BILINEAR)
  if spec.crop:
    top, left, h, w = random_resized_crop_box(rng, height, width,
                                              spec.crop_scale, spec.crop_ratio)
    pil = pil.resize((size, size), Image.BILINEAR,
                     box=(left, top, left + w, top + h))
  elif pil.size != (size, size):
    pil = pil.resize((size, size), Image.BICUBIC)
  if spec.flip_prob and rng.random() < spec.flip_prob:
    pil = pil.transpose(Image.FLIP_LEFT_RIGHT)
  x = np.asarray(pil)
  if spec.jitter_prob or spec.gray_prob:
    f = x.astype(np.float32) / 255.0
    if spec.jitter_prob and rng.random() < spec.jitter_prob:
      f = color_jitter(f, rng, spec.jitter)
    if spec.gray_prob and rng.random() < spec.gray_prob:
      f = np.repeat(_grayscale(f)[..., None], 3, axis=-1)
    x = np.clip(np.round(f * 255.0), 0, 255).astype(np.uint8)
  if spec.blur_prob and rng.random() < spec.blur_prob:
    sigma = rng.uniform(*spec.blur_sigma)
    x = np.asarray(Image.fromarray(x).filter(ImageFilter.GaussianBlur(sigma)))
  if spec.solarize_prob and rng.random() < spec.solarize_prob:
    x = np.where(x >= 128, 255 - x, x).astype(np.uint8)
  return x
