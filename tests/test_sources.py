"""Image sources: npz, image folders, TFDS, Tiny-ImageNet and CIFAR-10."""

import dataclasses
import os

import numpy as np
from PIL import Image
import pytest

from ssl_pairs.data import sources
from ssl_pairs.errors import UserError


def test_npz_source_resizes_and_keeps_labels(synthetic_npz):
  src = sources.load_split(synthetic_npz, 'train', '', 32)
  assert len(src) == 80 and src.num_classes == 8
  assert src[0].shape == (32, 32, 3) and src[0].dtype == np.uint8
  assert src.class_names[3] == 'class3'
  np.testing.assert_array_equal(np.bincount(src.labels), [10] * 8)
  sub = src.subset([5, 70])
  np.testing.assert_array_equal(sub.labels, [0, 7])
  np.testing.assert_array_equal(sub[1], src[70])


@pytest.mark.parametrize('shape', [(4, 8, 8), (4, 8, 8, 1), (4, 8, 8, 4)])
def test_npz_grayscale_and_rgba_become_rgb(tmp_path, shape):
  x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
  path = tmp_path / 'x.npz'
  np.savez(path, images=x, labels=np.zeros(4, np.int64))
  src = sources.load_split(str(path), 'train', '', None)
  assert src.images.shape == (4, 8, 8, 3)
  if len(shape) == 3 or shape[-1] == 1:
    np.testing.assert_array_equal(src.images[..., 0], src.images[..., 2])
  else:
    np.testing.assert_array_equal(src.images, x[..., :3])


def test_npz_errors_say_what_is_wrong(tmp_path):
  bad_dtype = tmp_path / 'f.npz'
  np.savez(bad_dtype, images=np.zeros((2, 4, 4, 3), np.float32),
           labels=np.zeros(2))
  with pytest.raises(UserError, match='must be uint8'):
    sources.load_split(str(bad_dtype), 'train', '', None)
  bad_shape = tmp_path / 's.npz'
  np.savez(bad_shape, images=np.zeros((2, 3, 5, 5), np.uint8),
           labels=np.zeros(2))
  with pytest.raises(UserError, match=r'shape \[N, H, W, 3\]'):
    sources.load_split(str(bad_shape), 'train', '', None)
  truncated = tmp_path / 't.npz'
  np.savez(truncated, images=np.zeros((50, 8, 8, 3), np.uint8),
           labels=np.zeros(50))
  data = truncated.read_bytes()
  truncated.write_bytes(data[:len(data) // 2])
  with pytest.raises(UserError, match='truncated or not an npz'):
    sources.load_split(str(truncated), 'train', '', None)
  no_labels = tmp_path / 'n.npz'
  np.savez(no_labels, images=np.zeros((2, 4, 4, 3), np.uint8))
  with pytest.raises(UserError, match='needs "images" and "labels"'):
    sources.load_split(str(no_labels), 'train', '', None)


def test_image_folder_converts_modes_and_finds_splits(tmp_path):
  root = tmp_path / 'folder'
  modes = {'L': 128, 'P': 3, 'RGBA': (10, 20, 30, 0), 'RGB': (1, 2, 3)}
  for split in ('train', 'test'):
    for c, (mode, colour) in enumerate(modes.items()):
      d = root / split / f'class_{c}'
      os.makedirs(d)
      for i in range(2):
        Image.new(mode, (12, 10), colour).save(
            d / f'{i}.{"jpg" if mode in ("L", "RGB") else "png"}')
  train = sources.load_split(str(root), 'train', '', 16)
  test = sources.load_split(str(root), 'test', '', 16)
  assert len(train) == len(test) == 8
  assert train.images.shape == (8, 16, 16, 3)
  assert train.class_names == ['class_0', 'class_1', 'class_2', 'class_3']
  rgba = train.images[train.labels == 2][0]
  np.testing.assert_array_equal(rgba[0, 0], [10, 20, 30])
  assert sources.has_split(str(root), 'test', '')
  assert not sources.has_split(str(root / 'train'), 'test', '')


def test_empty_class_folder_is_an_error(tmp_path):
  os.makedirs(tmp_path / 'a')
  os.makedirs(tmp_path / 'b')
  Image.new('RGB', (4, 4)).save(tmp_path / 'a' / 'x.png')
  with pytest.raises(UserError, match='holds no images'):
    sources.load_split(str(tmp_path), 'train', '', None)


def test_unknown_and_missing_datasets_explain_the_fix(tmp_path):
  with pytest.raises(UserError, match='cifar10, tiny_imagenet'):
    sources.load_split('imagenet21k', 'train', str(tmp_path), None)
  with pytest.raises(UserError, match='SSL_PAIRS_DATA_DIR'):
    sources.load_split('tiny_imagenet', 'train', str(tmp_path), None)
  with pytest.raises(UserError, match='SSL_PAIRS_DATA_DIR'):
    sources.load_split('cifar10', 'train', str(tmp_path), None)


def test_tfds_data_source_with_mock_data(tmp_path):
  tfds = pytest.importorskip('tensorflow_datasets')
  with tfds.testing.mock_data(num_examples=6,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    src = sources.load_split('cifar100', 'train', str(tmp_path), 16)
  assert len(src) == 6 and src.images.shape == (6, 16, 16, 3)
  # Mock data carries the real feature spec (100 labels) but not their names.
  assert src.num_classes == 100
  assert set(src.labels) <= set(range(100))


def test_resolve_data_dir_order(monkeypatch):
  monkeypatch.setenv('SSL_PAIRS_DATA_DIR', '/env/dir')
  assert sources.resolve_data_dir('/cfg/dir') == '/cfg/dir'
  assert sources.resolve_data_dir('') == '/env/dir'
  monkeypatch.delenv('SSL_PAIRS_DATA_DIR')
  monkeypatch.setenv('TFDS_DATA_DIR', '/tfds/dir')
  assert sources.resolve_data_dir(None) == '/tfds/dir'


def test_real_tiny_imagenet_layout(real_data_dir):
  train = sources.load_split('tiny_imagenet', 'train', real_data_dir, 64)
  val = sources.load_split('tiny_imagenet', 'val', real_data_dir, 64)
  assert len(train) == 20000 and len(val) == 2000
  assert train.num_classes == 200
  assert list(train.class_ids) == sorted(train.class_ids)
  np.testing.assert_array_equal(np.bincount(train.labels, minlength=200),
                                [100] * 200)
  np.testing.assert_array_equal(np.bincount(val.labels, minlength=200),
                                [10] * 200)
  # val_0 is annotated n03444034 (go-kart) with box 0 32 44 62.
  i = val.paths.index(os.path.join('val', 'images', 'val_0.JPEG'))
  assert train.class_ids[val.labels[i]] == 'n03444034'
  np.testing.assert_array_equal(val.boxes[i], [0, 32, 44, 62])
  assert train.images.shape == (20000, 64, 64, 3)


def test_real_cifar10_test_order(real_data_dir):
  test = sources.load_split('cifar10', 'test', real_data_dir, 32)
  assert len(test) == 10000 and test.class_names[0] == 'airplane'
  np.testing.assert_array_equal(test.labels[:10], [3, 8, 8, 0, 6, 6, 1, 6, 3, 1])


def test_tfrecord_only_tfds_data_says_how_to_convert(tmp_path, monkeypatch):
  tfds = pytest.importorskip('tensorflow_datasets')

  def tfrecord_only(name, **kwargs):
    # The message TFDS 4.9 raises for data prepared as TFRecord only.
    raise NotImplementedError(
        'Random access data source for file format tfrecord is not supported. '
        'Possible root causes:\n\t* You have to run download_and_prepare with '
        'file_format=array_record or parquet.')

  monkeypatch.setattr(tfds, 'data_source', tfrecord_only)
  with pytest.raises(UserError, match='--file_format=array_record'):
    sources.load_split('stl10', 'train', str(tmp_path), 32)


def test_object_crops_cut_each_image_to_its_box():
  """A red object inside a blue frame: the crop is the object, resized."""
  images = np.zeros((2, 32, 32, 3), np.uint8)
  images[..., 2] = 255
  images[0, 8:16, 4:20] = (255, 0, 0)      # 16 wide × 8 high at (4, 8).
  images[1, 16:32, 16:32] = (255, 0, 0)    # Bottom-right quarter.
  # Boxes are in 64-px units (Tiny-ImageNet's); the images here are 32 px.
  boxes = np.asarray([[8, 16, 39, 31], [32, 32, 63, 63]])  # Inclusive.
  src = sources.ImageSource(name='toy', split='train', labels=np.zeros(2, int),
                            class_names=['a'], image_size=32, images=images,
                            boxes=boxes)
  crops = sources.object_crops(src)
  assert crops.images.shape == (2, 32, 32, 3) and len(crops) == 2
  # Square around the box: the wide box's crop keeps blue above and below.
  red = (crops.images[..., 0] > 200) & (crops.images[..., 2] < 60)
  assert red[0].mean() == pytest.approx(0.5, abs=0.1)
  assert red[1].mean() > 0.95
  with pytest.raises(UserError, match='needs object boxes'):
    sources.object_crops(dataclasses.replace(src, boxes=None))
