"""Device-side view transforms: the host versions' distributions as jnp ops.

With ``config.data.augment_on='device'`` the host pipeline only gathers the
uint8 images of each pair (plus the pair's (epoch, item) seed) and the views
are made inside the jitted train step, one vmapped transform per sample with
its own key ``fold_in(fold_in(key(seed), epoch), item)`` — so, as on the host,
a view depends on (seed, epoch, pair) only, never on the batch or the devices.

Every op follows its host counterpart in :mod:`ssl_pairs.data.augment`
(torchvision's definitions): RandomResizedCrop's ten attempts and centre-crop
fallback, the crop resized with an antialiased bilinear filter (PIL's
``resize(box=...)``), rotation about the centre with black fill, ColorJitter's
four ops in a random order, luma grayscale, Gaussian blur with σ ~ U(0.1, 2)
and edge padding, solarize at 128; values are rounded to the 0–255 grid where
the host holds uint8. The random draws differ from numpy's, so views are not
bitwise equal to the host's — their distributions are (tests compare both).
"""

import functools
import math
from typing import Dict, Optional

import jax
import jax.numpy as jnp

from ssl_pairs.data import augment
from ssl_pairs.errors import unknown_name_error

# Greatest blur σ the kernel supports (the presets use U(0.1, 2)).
_MAX_SIGMA = 2.0
_LUMA = jnp.asarray([0.299, 0.587, 0.114], jnp.float32)


def crop_box(key, height: int, width: int, scale, ratio):
  """torchvision's RandomResizedCrop.get_params in jnp: (top, left, h, w)."""
  k_area, k_ratio, k_top, k_left = jax.random.split(key, 4)
  area = height * width
  target = area * jax.random.uniform(k_area, (10,), minval=scale[0],
                                     maxval=scale[1])
  aspect = jnp.exp(jax.random.uniform(k_ratio, (10,),
                                      minval=math.log(ratio[0]),
                                      maxval=math.log(ratio[1])))
  w = jnp.round(jnp.sqrt(target * aspect))
  h = jnp.round(jnp.sqrt(target / aspect))
  ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
  first = jnp.argmax(ok)
  # Centre-crop fallback when no attempt fits (static: depends on the shape).
  in_ratio = width / height
  if in_ratio < min(ratio):
    fw, fh = width, int(round(width / min(ratio)))
  elif in_ratio > max(ratio):
    fh, fw = height, int(round(height * max(ratio)))
  else:
    fw, fh = width, height
  found = ok.any()
  h = jnp.where(found, h[first], fh)
  w = jnp.where(found, w[first], fw)
  top = jnp.floor(jax.random.uniform(k_top) * (height - h + 1))
  left = jnp.floor(jax.random.uniform(k_left) * (width - w + 1))
  top = jnp.where(found, top, (height - fh) // 2)
  left = jnp.where(found, left, (width - fw) // 2)
  return top, left, h, w


def resized_crop(image, top, left, h, w, size: int):
  """The box resized to size×size (antialiased bilinear, as PIL's resize)."""
  scale = jnp.stack([size / h, size / w])
  translation = jnp.stack([-top * size / h, -left * size / w])
  return jax.image.scale_and_translate(
      image, (size, size, image.shape[-1]), (0, 1), scale, translation,
      method='linear', antialias=True)


def rotate(image, degrees):
  """Counter-clockwise rotation about the centre, bilinear, black fill (PIL)."""
  height, width = image.shape[:2]
  theta = -jnp.deg2rad(degrees)
  cos, sin = jnp.cos(theta), jnp.sin(theta)
  cy, cx = height / 2, width / 2
  v, u = jnp.meshgrid(jnp.arange(height) + 0.5, jnp.arange(width) + 0.5,
                      indexing='ij')
  xin = cos * (u - cx) + sin * (v - cy) + cx
  yin = -sin * (u - cx) + cos * (v - cy) + cy
  # PIL fills an output pixel whose source point lies outside the image and
  # interpolates the others with the edge pixels clamped.
  inside = (xin >= 0) & (xin < width) & (yin >= 0) & (yin < height)
  channels = [jax.scipy.ndimage.map_coordinates(
      image[..., c], [yin - 0.5, xin - 0.5], order=1, mode='nearest')
              for c in range(image.shape[-1])]
  return jnp.where(inside[..., None], jnp.stack(channels, -1), 0.0)


def grayscale(x):
  """Luma (0.299, 0.587, 0.114) of float RGB."""
  return x @ _LUMA


def rgb_to_hsv(x):
  r, g, b = x[..., 0], x[..., 1], x[..., 2]
  maxc, minc = x.max(-1), x.min(-1)
  delta = maxc - minc
  s = jnp.where(maxc > 0, delta / jnp.maximum(maxc, 1e-12), 0.0)
  safe = jnp.maximum(delta, 1e-12)
  rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
  h = jnp.where(maxc == r, bc - gc,
                jnp.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
  h = jnp.where(delta > 0, (h / 6.0) % 1.0, 0.0)
  return h, s, maxc


def hsv_to_rgb(h, s, v):
  i = jnp.floor(h * 6.0)
  f = h * 6.0 - i
  p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
  i = i.astype(jnp.int32) % 6
  r = jnp.choose(i, [v, q, p, p, t, v], mode='clip')
  g = jnp.choose(i, [t, v, v, q, p, p], mode='clip')
  b = jnp.choose(i, [p, p, t, v, v, q], mode='clip')
  return jnp.stack([r, g, b], -1)


def adjust(x, op, factor):
  """ColorJitter op ``op`` (0 brightness, 1 contrast, 2 saturation, 3 hue)."""
  def brightness(x):
    return jnp.clip(x * factor, 0, 1)

  def contrast(x):
    return jnp.clip(factor * x + (1 - factor) * grayscale(x).mean(), 0, 1)

  def saturation(x):
    return jnp.clip(factor * x + (1 - factor) * grayscale(x)[..., None], 0, 1)

  def hue(x):
    h, s, v = rgb_to_hsv(x)
    return hsv_to_rgb((h + factor) % 1.0, s, v)

  return jax.lax.switch(op, [brightness, contrast, saturation, hue], x)


def color_jitter(x, key, strength):
  """torchvision ColorJitter on float [0, 1] RGB: four ops in random order."""
  k_order, k_factor = jax.random.split(key)
  order = jax.random.permutation(k_order, 4)
  b, c, s, h = strength
  u = jax.random.uniform(k_factor, (4,))
  lows = jnp.asarray([max(0., 1 - b), max(0., 1 - c), max(0., 1 - s), -h])
  highs = jnp.asarray([1 + b, 1 + c, 1 + s, h])
  factors = lows + u * (highs - lows)
  active = jnp.asarray([b > 0, c > 0, s > 0, h > 0])
  for slot in range(4):
    op = order[slot]
    x = jnp.where(active[op], adjust(x, op, factors[op]), x)
  return x


def gaussian_blur(x, sigma):
  """Separable Gaussian blur with edge padding (PIL GaussianBlur(radius=σ))."""
  radius = int(math.ceil(3 * _MAX_SIGMA))
  taps = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  kernel = jnp.exp(-0.5 * (taps / sigma) ** 2)
  kernel = kernel / kernel.sum()
  height, width = x.shape[:2]
  padded = jnp.pad(x, ((radius, radius), (0, 0), (0, 0)), mode='edge')
  x = sum(kernel[i] * padded[i:i + height] for i in range(2 * radius + 1))
  padded = jnp.pad(x, ((0, 0), (radius, radius), (0, 0)), mode='edge')
  return sum(kernel[i] * padded[:, i:i + width] for i in range(2 * radius + 1))


def apply_view(image, key, spec: augment.ViewSpec, size: int):
  """One random view of a [H, W, 3] image (0–255 floats or uint8) → float32
  [size, size, 3] on the 0–255 grid; the jnp twin of
  :func:`augment.apply_view` (same spec, same order of transforms)."""
  x = image.astype(jnp.float32)
  height, width = x.shape[:2]
  keys = jax.random.split(key, 12)
  draws = jax.random.uniform(keys[0], (6,))
  if spec.rotation_prob:
    angle = jax.random.uniform(keys[1], minval=-spec.rotation_degrees,
                               maxval=spec.rotation_degrees)
    x = jnp.where(draws[0] < spec.rotation_prob,
                  jnp.round(rotate(x, angle)), x)
  if spec.crop:
    top, left, h, w = crop_box(keys[2], height, width, spec.crop_scale,
                               spec.crop_ratio)
    x = jnp.round(jnp.clip(resized_crop(x, top, left, h, w, size), 0, 255))
  elif (height, width) != (size, size):
    x = jax.image.resize(x, (size, size, x.shape[-1]), 'cubic',
                         antialias=True)
    x = jnp.round(jnp.clip(x, 0, 255))
  if spec.flip_prob:
    x = jnp.where(draws[1] < spec.flip_prob, x[:, ::-1], x)
  if spec.jitter_prob or spec.gray_prob:
    f = x / 255.0
    if spec.jitter_prob:
      f = jnp.where(draws[2] < spec.jitter_prob,
                    color_jitter(f, keys[3], spec.jitter), f)
    if spec.gray_prob:
      gray = jnp.repeat(grayscale(f)[..., None], 3, axis=-1)
      f = jnp.where(draws[3] < spec.gray_prob, gray, f)
    x = jnp.clip(jnp.round(f * 255.0), 0, 255)
  if spec.blur_prob:
    sigma = jax.random.uniform(keys[4], minval=spec.blur_sigma[0],
                               maxval=min(spec.blur_sigma[1], _MAX_SIGMA))
    x = jnp.where(draws[4] < spec.blur_prob,
                  jnp.round(gaussian_blur(x, sigma)), x)
  if spec.solarize_prob:
    x = jnp.where(draws[5] < spec.solarize_prob,
                  jnp.where(x >= 128, 255 - x, x), x)
  return x


# Separates the augmentation keys from the step's fold_in(key(seed), step).
_AUG_TAG = 0x61756721


def sample_keys(seed: int, aug_seed):
  """Per-sample keys from the records' (epoch, item) seeds [B, 2]."""
  base = jax.random.fold_in(jax.random.key(seed), _AUG_TAG)
  return jax.vmap(lambda s: jax.random.fold_in(
      jax.random.fold_in(base, s[0]), s[1]))(aug_seed)


class DeviceAugmenter:
  """Turns a batch of raw pair images into views inside the jitted step.

  Input batch (from :func:`pipeline.train_batches` with ``augment_on=device``):
  'view1'/'view2' hold the pair's raw uint8 images [B, H, W, 3], 'aug_seed'
  int32 [B, 2] and 'same' bool [B] (an augmented pair — the anchor is its own
  partner in a pair set whose self-pairs are augmented: the pair transform
  applies to 'view2'); SPPS adds raw 'positives'
  [B, P, H, W, 3]. Output: the same keys as the host pipeline gives ('view1',
  'view2', multi-crop 'local', 'positives') as 0–255 float32 views.
  """

  def __init__(self, data_config, seed: int):
    self.specs = augment.view_specs(data_config.augment,
                                    data_config.image_size)
    self.pair_spec = augment.pair_transform_spec(
        data_config.pair_transform, data_config.augment.drop)
    self.local = augment.local_crop_spec(data_config.augment,
                                         data_config.image_size)
    self.size = data_config.image_size
    self.seed = seed

  def __call__(self, batch: Dict[str, jax.Array]) -> Dict[str, jax.Array]:
    out = dict(batch)
    raw1, raw2 = batch['view1'], batch['view2']
    keys = sample_keys(self.seed, batch['aug_seed'])
    # Streams: 0 pair transform, 1-2 views, 3 local crops, 4 positives.
    streams = jax.vmap(lambda k: jax.random.split(k, 5))(keys)
    if self.pair_spec is not None and raw2.shape[1] == raw2.shape[2]:
      # Non-square images have no self-pairs (the pipeline refuses them).
      moved = jax.vmap(functools.partial(
          apply_view, spec=self.pair_spec, size=raw2.shape[1]))(
              raw2, streams[:, 0])
      raw2 = jnp.where(batch['same'][:, None, None, None], moved,
                       raw2.astype(jnp.float32))
    view = functools.partial(apply_view, size=self.size)
    out['view1'] = jax.vmap(functools.partial(view, spec=self.specs[0]))(
        raw1, streams[:, 1])
    out['view2'] = jax.vmap(functools.partial(view, spec=self.specs[1]))(
        raw2, streams[:, 2])
    n_local, local_size, local_spec = self.local
    if n_local:
      def locals_of(a, b, key):
        ks = jax.random.split(key, n_local)
        return jnp.stack([apply_view(a if i % 2 == 0 else b, ks[i],
                                     local_spec, local_size)
                          for i in range(n_local)])
      out['local'] = jax.vmap(locals_of)(raw1, raw2, streams[:, 3])
    if 'positives' in batch:
      def positives_of(images, key):
        ks = jax.random.split(key, images.shape[0])
        return jax.vmap(functools.partial(view, spec=self.specs[1]))(images,
                                                                     ks)
      out['positives'] = jax.vmap(positives_of)(batch['positives'],
                                                streams[:, 4])
    for k in ('aug_seed', 'same'):
      out.pop(k)
    return out


def maybe_augmenter(config) -> Optional[DeviceAugmenter]:
  """The run's device augmenter, or None for host augmentation."""
  where = config.data.get('augment_on', 'host')
  if where == 'host':
    return None
  if where != 'device':
    raise unknown_name_error('data.augment_on', where, ('host', 'device'))
  return DeviceAugmenter(config.data, config.seed)
