"""View transforms: determinism, torchvision semantics, presets and drops."""

import numpy as np
import pytest

from configs import common
from ssl_pairs.data import augment
from ssl_pairs.errors import UserError


def aug_config(**kw):
  c = common.data_config('augmented').augment
  c.update(kw)
  return c


def image(seed=0, size=32):
  return np.random.default_rng(seed).integers(0, 256, (size, size, 3),
                                              dtype=np.uint8)


def test_same_seed_same_view_and_different_seed_different_view():
  spec = augment.view_specs(aug_config(), 32)[0]
  x = image()
  a = augment.apply_view(x, np.random.default_rng([1, 2]), spec, 32)
  b = augment.apply_view(x, np.random.default_rng([1, 2]), spec, 32)
  c = augment.apply_view(x, np.random.default_rng([1, 3]), spec, 32)
  assert a.dtype == np.uint8 and a.shape == (32, 32, 3)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_none_preset_is_the_identity_and_resizes():
  spec = augment.view_specs(aug_config(preset='none'), 32)[0]
  x = image()
  np.testing.assert_array_equal(
      augment.apply_view(x, np.random.default_rng(0), spec, 32), x)
  assert augment.apply_view(x, np.random.default_rng(0), spec,
                            16).shape == (16, 16, 3)


def test_weak_preset_only_flips():
  spec = augment.view_specs(aug_config(preset='weak'), 32)[0]
  x = image()
  seen = set()
  for s in range(20):
    v = augment.apply_view(x, np.random.default_rng(s), spec, 32)
    if np.array_equal(v, x):
      seen.add('same')
    else:
      np.testing.assert_array_equal(v, x[:, ::-1])
      seen.add('flipped')
  assert seen == {'same', 'flipped'}


def test_crop_box_follows_torchvision_scale_and_ratio():
  rng = np.random.default_rng(0)
  areas, ratios = [], []
  for _ in range(2000):
    top, left, h, w = augment.random_resized_crop_box(rng, 64, 64, (0.2, 1.0),
                                                      (3 / 4, 4 / 3))
    assert 0 <= top and top + h <= 64 and 0 <= left and left + w <= 64
    areas.append(h * w / 64**2)
    ratios.append(w / h)
  # Rounding to whole pixels widens the bounds a little.
  assert 0.18 <= min(areas) and max(areas) <= 1.0
  assert 0.7 <= min(ratios) and max(ratios) <= 1.4
  assert 0.5 < np.mean(areas) < 0.7  # E[U(0.2, 1)] = 0.6 before rejections.


def test_hsv_round_trip_and_hue_shift_keeps_value():
  x = np.random.default_rng(1).uniform(size=(8, 8, 3)).astype(np.float32)
  h, s, v = augment._rgb_to_hsv(x)
  np.testing.assert_allclose(augment._hsv_to_rgb(h, s, v), x, atol=1e-5)
  shifted = augment.color_jitter(x, np.random.default_rng(0), (0, 0, 0, 0.5))
  np.testing.assert_allclose(shifted.max(-1), x.max(-1), atol=1e-5)


def test_grayscale_makes_channels_equal_and_drop_removes_it():
  cfg = aug_config(preset='strong', gray_prob=1.0, jitter_prob=0.0)
  spec = augment.view_specs(cfg, 32)[0]
  v = augment.apply_view(image(), np.random.default_rng(0), spec, 32)
  assert np.array_equal(v[..., 0], v[..., 1]) and np.array_equal(
      v[..., 1], v[..., 2])
  dropped = augment.view_specs(aug_config(gray_prob=1.0, drop='grayscale'),
                               32)[0]
  assert dropped.gray_prob == 0.0 and dropped.crop


def test_blur_auto_off_at_32_px_on_at_64_and_asymmetric_solarize():
  assert augment.view_specs(aug_config(), 32)[0].blur_prob == 0.0
  assert augment.view_specs(aug_config(), 64)[0].blur_prob == 0.5
  v1, v2 = augment.view_specs(aug_config(preset='asymmetric'), 64)
  assert (v1.blur_prob, v2.blur_prob) == (1.0, 0.1)
  assert (v1.solarize_prob, v2.solarize_prob) == (0.0, 0.2)


def test_solarize_inverts_bright_pixels():
  spec = augment.ViewSpec(solarize_prob=1.0)
  x = np.array([[[0, 127, 128], [200, 255, 10]],
                [[1, 2, 3], [130, 140, 150]]], np.uint8)
  y = augment.apply_view(x, np.random.default_rng(0), spec, 2)
  np.testing.assert_array_equal(y, np.where(x >= 128, 255 - x, x))


def test_unknown_names_fail_with_the_valid_choices():
  with pytest.raises(UserError, match='strong'):
    augment.view_specs(aug_config(preset='strongest'), 32)
  with pytest.raises(UserError, match='grayscale'):
    augment.parse_drop('greyscal')
  with pytest.raises(UserError, match='default'):
    augment.pair_transform_spec('rotate')
  assert augment.parse_drop('jitter, gray') == ('color_jitter', 'grayscale')


def test_pair_transform_rotates_and_changes_the_image():
  spec = augment.pair_transform_spec('default')
  assert spec.rotation_prob == 1.0 and spec.crop
  x = image(size=32)
  y = augment.apply_view(x, np.random.default_rng(0), spec, 32)
  assert y.shape == x.shape and not np.array_equal(x, y)
  assert augment.pair_transform_spec('none') is None


def test_drop_applies_to_the_pair_transform_too():
  spec = augment.pair_transform_spec('default', 'flip,color_jitter,rotation')
  assert spec.crop and spec.crop_scale == (0.3, 1.0)
  assert spec.flip_prob == spec.jitter_prob == spec.rotation_prob == 0
  assert augment.pair_transform_spec('default', 'grayscale') == (
      augment.pair_transform_spec('default'))  # It has no grayscale.
