"""Device-side augmentation: each op against its host (PIL/numpy) twin, the
views' statistics against the host pipeline's, per-sample keys, the raw-image
pipeline records, and training end to end with one compilation of the step."""

import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, ImageFilter

from configs import common
from conftest import synthetic_images
from ssl_pairs import train
from ssl_pairs.data import augment
from ssl_pairs.data import device_augment as da
from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data import pipeline
from ssl_pairs.data import sources
from ssl_pairs.errors import UserError
from ssl_pairs.metrics import read_jsonl


def blocky(seed=0, size=64):
  """Colour blocks of 4 px: edges for blur and resampling to act on."""
  rng = np.random.default_rng(seed)
  cells = rng.integers(0, 256, (size // 4, size // 4, 3))
  return np.kron(cells, np.ones((4, 4, 1))).astype(np.uint8)


def test_crop_box_distribution_matches_torchvision_sampler():
  n, scale, ratio = 4000, (0.08, 1.0), (3 / 4, 4 / 3)
  rng = np.random.default_rng(0)
  host = np.asarray([augment.random_resized_crop_box(rng, 64, 48, scale, ratio)
                     for _ in range(n)], np.float64)
  keys = jax.random.split(jax.random.key(0), n)
  dev = np.stack(jax.vmap(lambda k: jnp.stack(da.crop_box(k, 64, 48, scale,
                                                          ratio)))(keys))
  for stats in (lambda b: b[:, 2] * b[:, 3] / (64 * 48),      # area
                lambda b: np.log(b[:, 3] / b[:, 2]),          # aspect
                lambda b: b[:, 0] / np.maximum(64 - b[:, 2], 1),  # position
                lambda b: b[:, 1] / np.maximum(48 - b[:, 3], 1)):
    a, d = stats(host), stats(dev)
    se = np.sqrt(a.var() / n + d.var() / n)
    assert abs(a.mean() - d.mean()) < 4 * se, (a.mean(), d.mean())
  # Boxes are inside the image and on the integer grid.
  assert (dev[:, 0] + dev[:, 2] <= 64).all() and (dev[:, 1] + dev[:, 3] <= 48).all()
  np.testing.assert_array_equal(dev, np.round(dev))


def test_crop_box_falls_back_to_the_centre_crop_like_torchvision():
  # Scale 1 of a 64×16 image never fits a 3/4–4/3 box: the fallback is exact.
  host = augment.random_resized_crop_box(np.random.default_rng(0), 64, 16,
                                         (1.0, 1.0), (3 / 4, 4 / 3))
  dev = [int(v) for v in da.crop_box(jax.random.key(0), 64, 16, (1.0, 1.0),
                                     (3 / 4, 4 / 3))]
  assert dev == list(host) == [21, 0, 21, 16]


@pytest.mark.parametrize('box', [(5, 7, 40, 30), (0, 0, 64, 64),
                                 (10, 10, 12, 20)])
def test_resized_crop_matches_pil_resize_with_box(box):
  img = blocky()
  top, left, h, w = box
  ref = np.asarray(Image.fromarray(img).resize(
      (32, 32), Image.BILINEAR, box=(left, top, left + w, top + h)), float)
  out = np.asarray(da.resized_crop(jnp.asarray(img, jnp.float32), top, left,
                                   h, w, 32))
  assert np.abs(out - ref).max() <= 1.0  # PIL rounds to uint8.


@pytest.mark.parametrize('degrees', [7.0, -15.0, 20.0])
def test_rotation_matches_pil_including_the_black_corners(degrees):
  img = blocky()
  ref = np.asarray(Image.fromarray(img).rotate(degrees,
                                               resample=Image.BILINEAR), float)
  out = np.asarray(da.rotate(jnp.asarray(img, jnp.float32), degrees))
  assert np.abs(out - ref).max() <= 1.0
  np.testing.assert_array_equal(ref.sum(-1) == 0, np.round(out).sum(-1) == 0)


@pytest.mark.parametrize('sigma', [0.5, 1.3, 2.0])
def test_blur_is_close_to_pil_gaussian_blur(sigma):
  img = blocky()
  ref = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(sigma)),
                   float)
  out = np.asarray(da.gaussian_blur(jnp.asarray(img, jnp.float32), sigma))
  # PIL approximates the Gaussian by three box blurs; ours is the Gaussian.
  assert np.abs(out - ref).mean() < 1.0 and np.abs(out - ref).max() < 6
  # Blur keeps the mean and lowers the edge energy, more for larger σ.
  assert abs(out.mean() - img.mean()) < 0.5
  assert np.abs(np.diff(out, axis=1)).mean() < np.abs(
      np.diff(img.astype(float), axis=1)).mean()


@pytest.mark.parametrize('op,factor', [(0, 1.3), (1, 0.7), (2, 1.4),
                                       (3, 0.08), (3, -0.1)])
def test_colour_ops_equal_the_host_formulas(op, factor):
  f = blocky(1).astype(np.float32) / 255
  out = np.asarray(da.adjust(jnp.asarray(f), op, factor))
  gray = augment._grayscale(f)  # pylint: disable=protected-access
  if op == 0:
    ref = np.clip(f * factor, 0, 1)
  elif op == 1:
    ref = np.clip(factor * f + (1 - factor) * gray.mean(), 0, 1)
  elif op == 2:
    ref = np.clip(factor * f + (1 - factor) * gray[..., None], 0, 1)
  else:
    h, s, v = augment._rgb_to_hsv(f)  # pylint: disable=protected-access
    ref = augment._hsv_to_rgb((h + factor) % 1.0, s, v)  # pylint: disable=protected-access
  np.testing.assert_allclose(out, ref, atol=2e-6)


def view_stats(views):
  """Per view: channel means, std, horizontal edge energy, is-grayscale."""
  v = np.asarray(views, np.float64)
  return np.concatenate([
      v.mean((1, 2)), v.std((1, 2, 3))[:, None],
      np.abs(np.diff(v, axis=2)).mean((1, 2, 3))[:, None],
      (np.ptp(v, axis=-1).max((1, 2)) == 0)[:, None].astype(float),
      (v > 200).mean((1, 2, 3))[:, None]], 1)


@pytest.mark.parametrize('which', ['strong', 'asymmetric2', 'pair'])
def test_device_views_have_the_host_views_statistics(which):
  """Same spec, same images: the two pipelines' view statistics agree within
  sampling error (a wrong probability, scale or factor range would not)."""
  images, _ = synthetic_images(num_classes=4, per_class=4, size=64)
  images = np.concatenate([images, np.stack([blocky(s) for s in range(8)])])
  cfg = common.data_config('augmented').augment
  if which == 'strong':
    spec, size = augment.view_specs(cfg, 64)[0], 32
  elif which == 'asymmetric2':
    cfg.preset = 'asymmetric'
    spec, size = augment.view_specs(cfg, 64)[1], 32  # Blur 0.1, solarize 0.2.
  else:
    spec, size = augment.pair_transform_spec('default'), 64
  draws = 40
  host = np.stack([augment.apply_view(img, np.random.default_rng([i, d]),
                                      spec, size)
                   for d in range(draws) for i, img in enumerate(images)])
  n = len(host)
  batch = jnp.asarray(np.tile(images, (draws, 1, 1, 1)))
  keys = jax.random.split(jax.random.key(1), n)
  dev = jax.jit(jax.vmap(functools.partial(da.apply_view, spec=spec,
                                           size=size)))(batch, keys)
  dev = np.asarray(dev)
  assert dev.shape == host.shape
  np.testing.assert_array_equal(dev, np.clip(np.round(dev), 0, 255))
  a, d = view_stats(host), view_stats(dev)
  se = np.sqrt(a.var(0) / n + d.var(0) / n)
  gap = np.abs(a.mean(0) - d.mean(0))
  assert (gap < 4.5 * se + 0.02 * np.abs(a.mean(0)) + 1e-3).all(), (
      a.mean(0), d.mean(0), se)


def augmenter(preset='none', pair_transform='default', size=16):
  cfg = common.data_config('augmented')
  cfg.image_size = size
  cfg.augment.preset = preset
  cfg.pair_transform = pair_transform
  return da.DeviceAugmenter(cfg, seed=3)


def raw_batch(n=6, size=16):
  images, _ = synthetic_images(num_classes=2, per_class=n, size=size)
  return {'view1': jnp.asarray(images[:n]), 'view2': jnp.asarray(images[n:]),
          'aug_seed': jnp.asarray(np.stack([np.zeros(n), np.arange(n)], 1),
                                  jnp.int32),
          'same': jnp.asarray(np.arange(n) % 2 == 0),
          'label': jnp.zeros(n, jnp.int32), 'index': jnp.arange(n)}


def test_pair_transform_only_where_the_anchor_is_its_own_partner():
  b = raw_batch()
  out = augmenter()(b)
  assert set(out) == {'view1', 'view2', 'label', 'index'}
  np.testing.assert_array_equal(out['view1'], b['view1'])  # Preset none.
  same = np.asarray(b['same'])
  np.testing.assert_array_equal(np.asarray(out['view2'])[~same],
                                np.asarray(b['view2'])[~same])
  for row in np.flatnonzero(same):
    assert not np.array_equal(np.asarray(out['view2'])[row],
                              np.asarray(b['view2'])[row])


def test_views_depend_on_the_sample_seed_not_on_the_batch():
  aug = jax.jit(augmenter('strong', pair_transform='none').__call__)
  b = raw_batch()
  out = aug(b)
  perm = np.asarray([3, 0, 5, 1, 4, 2])
  out_p = aug(jax.tree.map(lambda x: x[perm], b))
  for k in ('view1', 'view2'):
    np.testing.assert_array_equal(np.asarray(out[k])[perm], out_p[k])
  other = dict(b, aug_seed=b['aug_seed'].at[:, 0].set(1))  # Next epoch.
  assert not np.array_equal(aug(other)['view1'], out['view1'])


def test_local_crops_alternate_anchor_and_partner_and_positives_get_views():
  """Flat colours, crops and flips only: each view shows which image it is."""
  n = 6
  colours = np.stack([np.arange(2 * n) * 20, 255 - np.arange(2 * n) * 20,
                      np.full(2 * n, 100)], 1).astype(np.uint8)
  images = np.broadcast_to(colours[:, None, None, :], (2 * n, 16, 16, 3))
  cfg = common.data_config('semantic')
  cfg.image_size = 16
  cfg.augment.preset = 'weak_rrc'
  cfg.augment.local_crops = 4
  cfg.augment.local_crop_size = 6
  aug = da.DeviceAugmenter(cfg, seed=0)
  positives = np.stack([images[[n - 1 - i, i]] for i in range(n)])
  out = aug({'view1': jnp.asarray(images[:n]), 'view2': jnp.asarray(images[n:]),
             'aug_seed': jnp.asarray(np.stack([np.zeros(n), np.arange(n)], 1),
                                     jnp.int32),
             'same': jnp.zeros(n, bool), 'positives': jnp.asarray(positives)})
  assert out['local'].shape == (n, 4, 6, 6, 3)
  assert out['positives'].shape == (n, 2, 16, 16, 3)

  def which(view):
    return int(np.argmin(np.abs(colours.astype(float) - np.asarray(
        view).reshape(-1, 3).mean(0)).sum(1)))
  for row in range(n):
    assert which(out['view1'][row]) == row
    assert which(out['view2'][row]) == n + row
    assert [which(v) for v in out['local'][row]] == [row, n + row] * 2
    assert [which(v) for v in out['positives'][row]] == [n - 1 - row, row]


def test_device_pipeline_ships_raw_images_and_view_seeds(synthetic_npz):
  src = sources.load_split(synthetic_npz, 'train', '', 16)
  cfg = common.data_config('augmented')
  cfg.image_size = 16
  cfg.augment_on = 'device'
  ps = pairs_lib.build_pair_set(cfg, src)
  b = pipeline.train_batches(src, ps, cfg, 8, 0)[11]  # Second epoch.
  assert b['view1'].dtype == np.uint8 and b['same'].all()
  for row in range(8):
    np.testing.assert_array_equal(b['view1'][row], src[b['index'][row]])
  assert (b['aug_seed'][:, 0] == 1).all()  # (epoch, item).
  assert len(set(b['aug_seed'][:, 1].tolist())) == 8


def test_device_augmentation_refuses_images_of_mixed_sizes():
  """Raw images are batched as they are, so they must share one shape."""
  src = sources.ImageSource(
      name='mixed', split='train', labels=np.arange(8) // 4,
      class_names=['a', 'b'], image_size=20,
      loader=lambda i: blocky(i, 20 if i < 6 else 24))
  cfg = common.data_config('augmented')
  cfg.image_size = 16
  cfg.augment_on = 'device'
  ps = pairs_lib.build_pair_set(cfg, src)
  batches = pipeline.train_batches(src, ps, cfg, 8, 0)
  with pytest.raises(UserError, match='images of one size'):
    batches[0]  # pylint: disable=pointless-statement


class _CompileCounter(logging.Handler):

  def __init__(self):
    super().__init__()
    self.names = []

  def emit(self, record):
    msg = record.getMessage()
    if 'Compiling' in msg or 'compiling' in msg:
      self.names.append(msg)


def test_device_augmented_run_trains_and_compiles_the_step_once(smoke_config,
                                                                tmp_path):
  config = smoke_config
  config.data.pairs = 'augmented'
  config.data.augment_on = 'device'
  config.total_steps = 6
  config.checkpoint_every_steps = 2
  config.log_every_steps = 1
  config.eval.every_epochs = 0.2  # Evaluations between steps, too.
  counter = _CompileCounter()
  jax_logger = logging.getLogger('jax')
  jax_logger.addHandler(counter)
  jax.config.update('jax_log_compiles', True)
  try:
    report = train.run(config, str(tmp_path / 'run'))
  finally:
    jax.config.update('jax_log_compiles', False)
    jax_logger.removeHandler(counter)
  assert report['step'] == 6
  steps = [m for m in counter.names if 'train_step' in m]
  assert len(steps) == 1, steps
  rows = read_jsonl(str(tmp_path / 'run' / 'metrics.jsonl'))
  assert [r['step'] for r in rows] == list(range(1, 7))
  assert all(np.isfinite(r['loss']) for r in rows)


def test_device_augmented_pairs_of_non_square_images_are_refused():
  """The partner's pair transform makes a square image (as on the host),
  which cannot share a batch array with the non-square anchor."""
  src = sources.ImageSource(
      name='wide', split='train', labels=np.zeros(8, int), class_names=['a'],
      image_size=16, loader=lambda i: np.zeros((16, 24, 3), np.uint8))
  cfg = common.data_config('augmented')
  cfg.image_size = 16
  cfg.augment_on = 'device'
  ps = pairs_lib.build_pair_set(cfg, src)
  with pytest.raises(UserError, match='square images only'):
    pipeline.train_batches(src, ps, cfg, 8, 0)[0]  # pylint: disable=expression-not-assigned
  cfg.pair_transform = 'none'  # Plain two-view: no square partner needed.
  b = pipeline.train_batches(src, ps, cfg, 8, 0)[0]
  assert b['view1'].shape == (8, 16, 24, 3)
