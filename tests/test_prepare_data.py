"""ssl-pairs prepare-data and the auto-prepare of missing builtin datasets.

No test touches the network: TFDS builds a dataset defined here (its examples
made in memory), CIFAR-10, CIFAR-100 and STL-10 come from tiny archives in
their official formats and Tiny-ImageNet from a small zip of its official
layout, all served from file:// URLs, and "offline" is a urlopen / builder
that raises.
"""

import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from ssl_pairs.data import prepare
from ssl_pairs.data import sources
from ssl_pairs.errors import UserError

tfds = pytest.importorskip('tensorflow_datasets')

TOY = 'ssl_pairs_prepare_toy'


def _toy_examples(split):
  """(key, image uint8 [8, 8, 3], label) of the toy TFDS dataset."""
  rng = np.random.default_rng(0 if split == 'train' else 1)
  n = 7 if split == 'train' else 4
  return [(i, rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), i % 3)
          for i in range(n)]


def _png(image):
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='PNG')
  return buffer.getvalue()


class SslPairsPrepareToy(tfds.core.GeneratorBasedBuilder):
  """A TFDS dataset made in memory: PNG bytes (encoding numpy images would
  need TensorFlow), three classes, train and test splits."""
  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    features = tfds.features.FeaturesDict({
        'image': tfds.features.Image(shape=(8, 8, 3)),
        'label': tfds.features.ClassLabel(names=['a', 'b', 'c'])})
    return tfds.core.DatasetInfo(builder=self, features=features)

  def _split_generators(self, dl_manager):
    del dl_manager
    return {'train': self._generate_examples('train'),
            'test': self._generate_examples('test')}

  def _generate_examples(self, split):
    for key, image, label in _toy_examples(split):
      yield key, {'image': _png(image), 'label': label}


@pytest.fixture(autouse=True)
def _own_tfds_dir(tmp_path, monkeypatch):
  """TFDS's default dir (where load_tfds also looks) inside the test's."""
  monkeypatch.setenv('TFDS_DATA_DIR', str(tmp_path / 'tfds_default'))


def _as_set(images, labels):
  return sorted((int(l), x.tobytes()) for x, l in zip(images, labels))


def test_tfds_dataset_is_built_as_array_record_and_reads_back(tmp_path):
  data_dir = str(tmp_path / 'data')
  said = []
  folder = prepare.prepare(f'tfds:{TOY}', data_dir, say=said.append)
  assert folder == os.path.join(data_dir, TOY, '1.0.0')
  assert any(f.startswith(f'{TOY}-train.array_record')
             for f in os.listdir(folder))
  # It said what and where before building.
  assert 'ArrayRecord' in said[0] and folder in said[0]
  for split in ('train', 'test'):
    src = sources.load_split(f'tfds:{TOY}', split, data_dir, None)
    made = _toy_examples(split)
    assert len(src) == len(made) and src.class_names == ['a', 'b', 'c']
    assert _as_set(src.images, src.labels) == _as_set(
        [m[1] for m in made], [m[2] for m in made])
  said.clear()
  assert prepare.prepare(f'tfds:{TOY}', data_dir, say=said.append) == folder
  assert len(said) == 1 and 'already prepared' in said[0]


def test_tfds_offline_names_what_it_tried_and_how_to_build_by_hand(
    tmp_path, monkeypatch):
  requests = pytest.importorskip('requests')

  def offline(self, **kwargs):
    raise requests.exceptions.ConnectionError('Name or service not known')

  monkeypatch.setattr(SslPairsPrepareToy, 'download_and_prepare', offline)
  data_dir = str(tmp_path / 'data')
  with pytest.raises(UserError) as e:
    prepare.prepare(f'tfds:{TOY}', data_dir, say=lambda _: None)
  message = str(e.value)
  assert f'Could not download TFDS {TOY}' in message
  assert (f'tfds build {TOY} --file_format=array_record --data_dir=DIR'
          in message and data_dir in message)
  assert f'ssl-pairs prepare-data tfds:{TOY} --data_dir={data_dir}' in message
  assert '\n' not in message

  def no_tensorflow(self, **kwargs):  # What TFDS raises encoding an image.
    raise ModuleNotFoundError("Failed to encode example:\n{'image': ...}\n"
                              "No module named 'tensorflow'")

  monkeypatch.setattr(SslPairsPrepareToy, 'download_and_prepare',
                      no_tensorflow)
  with pytest.raises(UserError, match='needs tensorflow.*tensorflow-cpu'):
    prepare.prepare(f'tfds:{TOY}', data_dir, say=lambda _: None)


def test_tfds_builtin_build_without_tensorflow_fails_before_downloading(
    tmp_path, monkeypatch):
  """TFDS's cifar builders encode images with TensorFlow: without it the
  error for tfds:cifar100 says so before a 160 MB download that could not be
  used, and points at the builtin cifar100, which needs no TensorFlow."""
  real_find_spec = prepare.importlib.util.find_spec
  monkeypatch.setattr(prepare.importlib.util, 'find_spec', lambda n: None if
                      n == 'tensorflow' else real_find_spec(n))
  called = []
  monkeypatch.setattr(tfds.core.DatasetBuilder, 'download_and_prepare',
                      lambda self, **k: called.append(1))
  with pytest.raises(UserError, match='needs TensorFlow.*tensorflow-cpu') as e:
    prepare.prepare('tfds:cifar100', str(tmp_path), say=lambda _: None)
  assert not called
  assert f'rerun `ssl-pairs prepare-data tfds:cifar100 --data_dir={tmp_path}`' \
      in str(e.value)
  assert f'`ssl-pairs prepare-data cifar100 --data_dir={tmp_path}`' in str(
      e.value)


def test_cifar10_npz_shards_count_as_prepared(tmp_path):
  for name in ('cifar10_train_00.npz', 'cifar10_test.npz'):
    (tmp_path / name).write_bytes(b'')
  said = []
  prepare.prepare('cifar10', str(tmp_path), say=said.append)
  assert 'already prepared' in said[0] and 'cifar10_test.npz' in said[0]


# ------------------------------------- CIFAR-10, CIFAR-100, STL-10 archives
#
# Tiny archives in the official formats: CIFAR's python version (pickled
# dicts with bytes keys; 'data' uint8 [N, 3072] = the red plane, then green,
# then blue, each row-major) and STL-10's binary version (uint8 images of
# 3 x 96 x 96 bytes, each channel column-major; labels 1..10).

CIFAR10_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog',
                 'frog', 'horse', 'ship', 'truck']
STL10_NAMES = ['airplane', 'bird', 'car', 'cat', 'deer', 'dog', 'horse',
               'monkey', 'ship', 'truck']


def _archive(path, members):
  """A .tar.gz of ``members`` {name: bytes}; (file:// URL, SHA-256, MD5)."""
  with tarfile.open(path, 'w:gz') as tar:
    for name, data in members.items():
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  data = open(path, 'rb').read()
  return ('file://' + os.path.abspath(path), hashlib.sha256(data).hexdigest(),
          hashlib.md5(data).hexdigest())


def _cifar_pixels(rng, n, side=32):
  """(images uint8 [n, side, side, 3] as they must load, raw rows in the
  official channel-planar layout). Image 0 is black but for two pixels
  placed by index arithmetic on the raw row, independently of any
  reshape: red 200 at row 1, column 2, and blue 100 at row 2, column 1."""
  images = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
  images[0] = 0
  images[0, 1, 2, 0] = 200
  images[0, 2, 1, 2] = 100
  raw = np.zeros((n, 3 * side * side), np.uint8)
  for i in range(n):
    for channel in range(3):
      for row in range(side):
        start = channel * side * side + row * side
        raw[i, start:start + side] = images[i, row, :, channel]
  assert raw[0, 0 * 1024 + 1 * 32 + 2] == 200
  assert raw[0, 2 * 1024 + 2 * 32 + 1] == 100
  return images, raw


def _pickle(value):
  """Protocol 2, numpy arrays under numpy.core (numpy 1's name), as in the
  official files (written by Python 2)."""
  data = pickle.dumps(value, protocol=2)
  return data.replace(b'cnumpy._core.multiarray\n', b'cnumpy.core.multiarray\n')


def _cifar10_archive(path, per_batch=(3, 2, 2, 1, 2), n_test=3):
  """A cifar-10-python.tar.gz; returns (url, sha256, md5, expected) with
  expected[split] = (images, labels, source paths) in the official order."""
  rng = np.random.default_rng(10)
  top = 'cifar-10-batches-py/'
  members = {top + 'batches.meta': _pickle({
      b'label_names': [n.encode() for n in CIFAR10_NAMES],
      b'num_cases_per_batch': 10000, b'num_vis': 3072})}
  expected = {'train': ([], [], []), 'test': ([], [], [])}
  batches = [(f'data_batch_{i + 1}', n) for i, n in enumerate(per_batch)]
  for batch, n in batches + [('test_batch', n_test)]:
    images, raw = _cifar_pixels(rng, n)
    labels = [int(l) for l in rng.integers(0, 10, n)]
    names = [f'{batch}_image_{i}.png' for i in range(n)]
    members[top + batch] = _pickle({
        b'batch_label': batch.encode(), b'labels': labels, b'data': raw,
        b'filenames': [f.encode() for f in names]})
    split = expected['test' if batch == 'test_batch' else 'train']
    split[0].append(images)
    split[1].append(labels)
    split[2].extend(f'{batch}/{f}' for f in names)
  members[top + 'readme.html'] = b'<html></html>'
  url, sha256, md5 = _archive(path, members)
  expected = {k: (np.concatenate(v[0]), np.concatenate(v[1]), v[2])
              for k, v in expected.items()}
  return url, sha256, md5, expected


def _cifar100_archive(path):
  rng = np.random.default_rng(100)
  top = 'cifar-100-python/'
  fine = [f'fine_{i}' for i in range(100)]
  members = {top + 'meta': _pickle({
      b'fine_label_names': [n.encode() for n in fine],
      b'coarse_label_names': [f'coarse_{i}'.encode() for i in range(20)]})}
  expected = {}
  for split, n in (('train', 4), ('test', 3)):
    images, raw = _cifar_pixels(rng, n)
    labels = [int(l) for l in rng.integers(0, 100, n)]
    labels[0] = 99  # Fine labels run past the 20 coarse ones.
    members[top + split] = _pickle({
        b'filenames': [f'{split}_{i}.png'.encode() for i in range(n)],
        b'batch_label': split.encode(), b'fine_labels': labels,
        b'coarse_labels': [l // 5 for l in labels], b'data': raw})
    expected[split] = (images, np.asarray(labels),
                       [f'{split}/{split}_{i}.png' for i in range(n)])
  url, sha256, md5 = _archive(path, members)
  return url, sha256, md5, fine, expected


def _stl10_archive(path):
  """stl10_binary.tar.gz. Image 0 of each split is black but for red 250 at
  row 1, column 5 (raw index channel*96*96 + column*96 + row: column-major)
  and green 77 at row 90, column 3."""
  rng = np.random.default_rng(96)
  top = 'stl10_binary/'
  members = {}
  expected = {}
  for split, n in (('train', 3), ('test', 2)):
    images = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
    images[0] = 0
    images[0, 1, 5, 0] = 250
    images[0, 90, 3, 1] = 77
    raw = np.zeros((n, 3 * 96 * 96), np.uint8)
    for i in range(n):
      for channel in range(3):
        for column in range(96):
          start = channel * 96 * 96 + column * 96
          raw[i, start:start + 96] = images[i, :, column, channel]
    assert raw[0, 0 * 9216 + 5 * 96 + 1] == 250
    assert raw[0, 1 * 9216 + 3 * 96 + 90] == 77
    labels = rng.integers(0, 10, n)
    labels[0] = 9  # Stored as 10.
    members[top + f'{split}_X.bin'] = raw.tobytes()
    members[top + f'{split}_y.bin'] = (labels + 1).astype(np.uint8).tobytes()
    expected[split] = (images, labels)
  members[top + 'unlabeled_X.bin'] = rng.integers(
      0, 256, 2 * 3 * 96 * 96, dtype=np.uint8).tobytes()
  members[top + 'class_names.txt'] = ('\n'.join(STL10_NAMES) + '\n').encode()
  members[top + 'fold_indices.txt'] = b'0 1 2\n'
  url, sha256, md5 = _archive(path, members)
  return url, sha256, md5, expected


def _npz_keys_like_the_shared_data(path, with_paths=True):
  with np.load(path) as z:
    assert z['images'].dtype == np.uint8 and z['images'].ndim == 4
    assert z['labels'].dtype == np.int64
    assert z['label_names'].dtype.kind == 'U'
    assert ('source_path' in z.files) == with_paths


def test_cifar10_archive_becomes_the_npz_shards_pixel_for_pixel(tmp_path):
  url, sha256, _, expected = _cifar10_archive(tmp_path / 'c10.tar.gz')
  data_dir = str(tmp_path / 'data')
  said = []
  assert prepare.prepare('cifar10', data_dir, say=said.append, url=url,
                         sha256=sha256) == data_dir
  assert url in said[0] and data_dir in said[0]  # What and where, up front.
  assert 'cifar10_test.npz' in said[0]
  assert sorted(os.listdir(data_dir)) == sorted(
      [f'cifar10_train_0{i}.npz' for i in range(5)] + ['cifar10_test.npz'])
  for name in os.listdir(data_dir):
    _npz_keys_like_the_shared_data(os.path.join(data_dir, name))
  # One shard per data batch, in order.
  with np.load(os.path.join(data_dir, 'cifar10_train_01.npz')) as z:
    np.testing.assert_array_equal(z['images'], expected['train'][0][3:5])
  for split in ('train', 'test'):
    images, labels, paths = expected[split]
    src = sources.load_split('cifar10', split, data_dir, None)
    assert src.class_names == CIFAR10_NAMES
    assert src.images.shape == images.shape
    np.testing.assert_array_equal(src.images, images)
    np.testing.assert_array_equal(src.labels, labels)
    assert src.paths == paths
  train = sources.load_split('cifar10', 'train', data_dir, None)
  assert train.images[0][1, 2, 0] == 200 and train.images[0][2, 1, 2] == 100
  assert train.images[0][2, 1, 0] == 0 and train.images[0][1, 2, 2] == 0
  assert int(train.images[0].sum()) == 300
  said.clear()
  assert prepare.prepare('cifar10', data_dir, say=said.append,
                         url='http://127.0.0.1:9/never.tar.gz') == data_dir
  assert len(said) == 1 and 'already prepared' in said[0]


def test_cifar100_archive_reads_fine_labels(tmp_path):
  url, sha256, _, fine, expected = _cifar100_archive(tmp_path / 'c.tar.gz')
  data_dir = str(tmp_path / 'data')
  prepare.prepare('cifar100', data_dir, say=lambda _: None, url=url,
                  sha256=sha256)
  assert sorted(os.listdir(data_dir)) == ['cifar100_test.npz',
                                          'cifar100_train.npz']
  for split in ('train', 'test'):
    images, labels, paths = expected[split]
    _npz_keys_like_the_shared_data(
        os.path.join(data_dir, f'cifar100_{split}.npz'))
    src = sources.load_split('cifar100', split, data_dir, None)
    assert src.class_names == fine and src.num_classes == 100
    np.testing.assert_array_equal(src.images, images)
    np.testing.assert_array_equal(src.labels, labels)
    assert src.paths == paths
    assert src.images[0][1, 2, 0] == 200 and src.images[0][2, 1, 2] == 100
    assert int(src.images[0].sum()) == 300
    assert sources.has_split('cifar100', split, data_dir)
  said = []
  prepare.prepare('cifar100', data_dir, say=said.append)
  assert len(said) == 1 and 'already prepared' in said[0]


def test_stl10_archive_transposes_its_column_major_images(tmp_path):
  url, sha256, _, expected = _stl10_archive(tmp_path / 'stl.tar.gz')
  data_dir = str(tmp_path / 'data')
  prepare.prepare('stl10', data_dir, say=lambda _: None, url=url,
                  sha256=sha256)
  assert sorted(os.listdir(data_dir)) == ['stl10_test.npz', 'stl10_train.npz']
  for split in ('train', 'test'):
    images, labels = expected[split]
    _npz_keys_like_the_shared_data(
        os.path.join(data_dir, f'stl10_{split}.npz'), with_paths=False)
    src = sources.load_split('stl10', split, data_dir, None)
    assert src.class_names == STL10_NAMES
    assert src.images.shape == (len(labels), 96, 96, 3)
    np.testing.assert_array_equal(src.images, images)
    np.testing.assert_array_equal(src.labels, labels)  # 1..10 → 0..9.
    assert src.labels[0] == 9
    first = src.images[0]
    assert first[1, 5, 0] == 250 and first[5, 1, 0] == 0
    assert first[90, 3, 1] == 77 and first[3, 90, 1] == 0
    assert int(first.sum()) == 250 + 77
  assert len(sources.load_split('stl10', 'test', data_dir, 32)) == 2
  said = []
  prepare.prepare('stl10', data_dir, say=said.append)
  assert len(said) == 1 and 'already prepared' in said[0]


@pytest.mark.parametrize('name', ['cifar10', 'cifar100', 'stl10'])
def test_archive_wrong_checksum_leaves_nothing_prepared(tmp_path, name):
  make = {'cifar10': _cifar10_archive, 'cifar100': _cifar100_archive,
          'stl10': _stl10_archive}[name]
  url, sha256 = make(tmp_path / 'a.tar.gz')[:2]
  data_dir = str(tmp_path / 'data')
  wrong = '0' * 64
  with pytest.raises(UserError) as e:
    prepare.prepare(name, data_dir, say=lambda _: None, url=url, sha256=wrong)
  assert f'{url} has SHA-256 {sha256}, not the expected {wrong}' in str(
      e.value)
  assert 'nothing was written' in str(e.value) and '\n' not in str(e.value)
  assert os.listdir(data_dir) == []
  assert prepare.archive_prepared(name, data_dir) is None
  with pytest.raises(UserError, match='data found.*ssl-pairs prepare-data'):
    sources.load_split(name, 'train', data_dir, None)


def test_official_archive_is_checked_against_sha256_and_md5(
    tmp_path, monkeypatch):
  """Without url/sha256 the module's official values are used, MD5 too: a
  file whose SHA-256 matches but MD5 does not is refused."""
  url, sha256, md5, expected = _cifar10_archive(tmp_path / 'c10.tar.gz')
  monkeypatch.setattr(prepare, 'CIFAR10_URL', url)
  monkeypatch.setattr(prepare, 'CIFAR10_SHA256', sha256)
  monkeypatch.setattr(prepare, 'CIFAR10_MD5', 'f' * 32)
  data_dir = str(tmp_path / 'data')
  with pytest.raises(UserError, match=f'has MD5 {md5}, not the expected f+'):
    prepare.prepare('cifar10', data_dir, say=lambda _: None)
  assert os.listdir(data_dir) == []
  monkeypatch.setattr(prepare, 'CIFAR10_MD5', md5.upper())
  said = []
  prepare.prepare('cifar10', data_dir, say=said.append)
  assert any(f'SHA-256 {sha256[:12]}' in l and f'MD5 {md5[:8]}' in l
             for l in said)
  test = sources.load_split('cifar10', 'test', data_dir, None)
  np.testing.assert_array_equal(test.images, expected['test'][0])


def test_archive_offline_names_the_url_and_the_files_to_place(
    tmp_path, monkeypatch):
  def offline(url, timeout=None):
    raise urllib.error.URLError(OSError(101, 'Network is unreachable'))

  monkeypatch.setattr(prepare.urllib.request, 'urlopen', offline)
  data_dir = str(tmp_path / 'data')
  for name, filename, outputs in (
      ('cifar10', 'cifar-10-python.tar.gz', 'cifar10_test.npz'),
      ('cifar100', 'cifar-100-python.tar.gz', 'cifar100_train.npz'),
      ('stl10', 'stl10_binary.tar.gz', 'stl10_test.npz')):
    with pytest.raises(UserError) as e:
      prepare.prepare(name, data_dir, say=lambda _: None)
    message = str(e.value)
    official_url = getattr(prepare, f'{name.upper()}_URL')
    assert official_url in message
    assert f'put it into {data_dir} as {filename}' in message
    assert outputs in message
    assert f'ssl-pairs prepare-data {name} --data_dir={data_dir}' in message
    assert message.count('. ') == 0 and '\n' not in message  # One sentence.
    assert os.listdir(data_dir) == []


def test_archive_placed_by_hand_is_read_without_downloading(
    tmp_path, monkeypatch):
  url, sha256, _, fine, expected = _cifar100_archive(tmp_path / 'c.tar.gz')
  del url
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  placed = data_dir / 'cifar-100-python.tar.gz'
  shutil.copy(tmp_path / 'c.tar.gz', placed)
  monkeypatch.setattr(prepare.urllib.request, 'urlopen',
                      lambda *a, **k: pytest.fail('downloaded'))
  said = []
  prepare.prepare('cifar100', str(data_dir), say=said.append, sha256=sha256)
  assert str(placed) in said[0] and 'nothing is downloaded' in said[0]
  assert placed.is_file()  # The user's file is left alone.
  src = sources.load_split('cifar100', 'test', str(data_dir), None)
  assert src.class_names == fine
  np.testing.assert_array_equal(src.images, expected['test'][0])
  # A damaged placed file: named, nothing written.
  other = tmp_path / 'other'
  other.mkdir()
  (other / 'cifar-100-python.tar.gz').write_bytes(b'truncated')
  with pytest.raises(UserError, match='damaged.*delete or replace it'):
    prepare.prepare('cifar100', str(other), say=lambda _: None)
  assert os.listdir(other) == ['cifar-100-python.tar.gz']


def test_archive_interrupted_writes_leave_no_set_that_looks_prepared(
    tmp_path, monkeypatch):
  """The disk fills while writing the third shard, or while renaming the
  test shard into place: no shard is left, and a rerun prepares it all."""
  url, sha256, _, expected = _cifar10_archive(tmp_path / 'c10.tar.gz')
  data_dir = str(tmp_path / 'data')
  real_savez, calls = np.savez, []

  def savez(path, **arrays):
    calls.append(path)
    if len(calls) == 3:
      raise OSError(28, 'No space left on device')
    real_savez(path, **arrays)

  monkeypatch.setattr(prepare.np, 'savez', savez)
  with pytest.raises(UserError, match='Cannot write.*No space left'):
    prepare.prepare('cifar10', data_dir, say=lambda _: None, url=url,
                    sha256=sha256)
  assert os.listdir(data_dir) == []
  monkeypatch.setattr(prepare.np, 'savez', real_savez)
  real_replace = os.replace

  def replace(src, dst):
    if os.path.basename(dst) == 'cifar10_test.npz':
      raise OSError(28, 'No space left on device')
    real_replace(src, dst)

  monkeypatch.setattr(prepare.os, 'replace', replace)
  with pytest.raises(UserError, match='Cannot write'):
    prepare.prepare('cifar10', data_dir, say=lambda _: None, url=url,
                    sha256=sha256)
  assert os.listdir(data_dir) == []
  monkeypatch.setattr(prepare.os, 'replace', real_replace)
  said = []
  prepare.prepare('cifar10', data_dir, say=said.append, url=url,
                  sha256=sha256)
  assert 'already prepared' not in said[0]
  assert len(sources.load_split('cifar10', 'train', data_dir, None)) == 10


def test_cifar_pickles_may_hold_only_data(tmp_path):
  """A pickle can run code: anything but CIFAR's dicts of lists, bytes and
  arrays is refused (before any file is written)."""
  class Evil:
    def __reduce__(self):
      return (os.getcwd, ())

  top = 'cifar-100-python/'
  meta = _pickle({b'fine_label_names': [b'a']})
  url, sha256, _ = _archive(tmp_path / 'evil.tar.gz', {
      top + 'meta': meta, top + 'train': pickle.dumps(Evil(), protocol=2),
      top + 'test': meta})
  data_dir = str(tmp_path / 'data')
  with pytest.raises(UserError, match='Cannot read train.*not allowed'):
    prepare.prepare('cifar100', data_dir, say=lambda _: None, url=url,
                    sha256=sha256)
  assert os.listdir(data_dir) == []


def test_archive_without_the_official_files_is_refused(tmp_path):
  url, sha256, _ = _archive(tmp_path / 'a.tar.gz',
                            {'stl10_binary/train_X.bin': b''})
  with pytest.raises(UserError, match='does not hold the STL-10 files.*'
                     'test_X.bin'):
    prepare.prepare('stl10', str(tmp_path / 'data'), say=lambda _: None,
                    url=url, sha256=sha256)


def test_load_split_prepares_a_missing_archive_dataset_only_when_asked(
    tmp_path, monkeypatch):
  url, sha256, md5, expected = _stl10_archive(tmp_path / 'stl.tar.gz')
  monkeypatch.setattr(prepare, 'STL10_URL', url)
  monkeypatch.setattr(prepare, 'STL10_SHA256', sha256)
  monkeypatch.setattr(prepare, 'STL10_MD5', md5)
  data_dir = str(tmp_path / 'data')
  with pytest.raises(UserError, match='ssl-pairs prepare-data stl10'):
    sources.load_split('stl10', 'train', data_dir, None, download=False)
  assert not os.path.exists(data_dir)
  train = sources.load_split('stl10', 'train', data_dir, None, download=True)
  np.testing.assert_array_equal(train.images, expected['train'][0])
  os.remove(tmp_path / 'stl.tar.gz')  # Present now: never downloaded again.
  test = sources.load_split('stl10', 'test', data_dir, None, download=True)
  np.testing.assert_array_equal(test.labels, expected['test'][1])


def test_tfrecord_copy_does_not_block_preparing_the_npz(tmp_path, monkeypatch):
  """A TFRecord-only TFDS cifar100 is refused when reading without download
  (its message says how to convert it), but preparing writes the npz files,
  which are read first."""
  version = tmp_path / 'cifar100' / '3.0.2'
  version.mkdir(parents=True)
  (version / 'cifar100-train.tfrecord-00000-of-00001').write_bytes(b'')
  url, sha256, md5, _, expected = _cifar100_archive(tmp_path / 'c.tar.gz')
  monkeypatch.setattr(prepare, 'CIFAR100_URL', url)
  monkeypatch.setattr(prepare, 'CIFAR100_SHA256', sha256)
  monkeypatch.setattr(prepare, 'CIFAR100_MD5', md5)
  with pytest.raises(UserError, match='prepared as TFRecord only'):
    sources.load_split('cifar100', 'train', str(tmp_path), None)
  src = sources.load_split('cifar100', 'train', str(tmp_path), None,
                           download=True)
  np.testing.assert_array_equal(src.images, expected['train'][0])


# ------------------------------------------------------------ Tiny-ImageNet

WNIDS = ('n02', 'n01', 'n03')  # wnids.txt order; classes are sorted wnids.


def _jpeg(colour):
  buffer = io.BytesIO()
  Image.new('RGB', (64, 64), colour).save(buffer, format='JPEG')
  return buffer.getvalue()


def _tiny_zip(path, per_class=3, val_labels=('n03', 'n01', 'n01', 'n02')):
  """A zip of the official layout; returns (file:// URL, SHA-256)."""
  top = 'tiny-imagenet-200/'
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr(top + 'wnids.txt', '\n'.join(WNIDS) + '\n')
    z.writestr(top + 'words.txt', 'n01\tgoldfish, Carassius auratus\n'
               'n02\tsalamander\nn03\tbullfrog\nn99\tunused\n')
    for c, wnid in enumerate(WNIDS):
      boxes = []
      for i in range(per_class):
        name = f'{wnid}_{i}.JPEG'
        z.writestr(f'{top}train/{wnid}/images/{name}', _jpeg((40 * c, i, 9)))
        boxes.append(f'{name}\t{i}\t{i + 1}\t{40 + i}\t{50 + i}')
      z.writestr(f'{top}train/{wnid}/{wnid}_boxes.txt', '\n'.join(boxes) + '\n')
    rows = []
    for k, wnid in enumerate(val_labels):
      z.writestr(f'{top}val/images/val_{k}.JPEG', _jpeg((k, 0, 0)))
      rows.append(f'val_{k}.JPEG\t{wnid}\t0\t{k}\t30\t{40 + k}')
    z.writestr(top + 'val/val_annotations.txt', '\n'.join(rows) + '\n')
    z.writestr(top + 'test/images/test_0.JPEG', _jpeg((1, 2, 3)))
  with open(path, 'rb') as f:
    digest = hashlib.sha256(f.read()).hexdigest()
  return 'file://' + os.path.abspath(path), digest


def _no_leftovers(data_dir):
  return [n for n in os.listdir(data_dir) if n.startswith('.')] == []


def test_tiny_imagenet_zip_is_checked_and_unpacked_in_the_official_layout(
    tmp_path):
  url, digest = _tiny_zip(tmp_path / 'tiny.zip')
  data_dir = str(tmp_path / 'data')
  said = []
  root = prepare.prepare('tiny_imagenet', data_dir, say=said.append, url=url,
                         sha256=digest)
  assert root == os.path.join(data_dir, 'tiny-imagenet-200')
  assert url in said[0] and root in said[0]  # What and where, up front.
  assert _no_leftovers(data_dir)
  train = sources.load_split('tiny_imagenet', 'train', data_dir, None)
  val = sources.load_split('tiny_imagenet', 'val', data_dir, None)
  assert list(train.class_ids) == ['n01', 'n02', 'n03']
  assert train.class_names == ['goldfish', 'salamander', 'bullfrog']
  np.testing.assert_array_equal(np.bincount(train.labels), [3, 3, 3])
  i = train.paths.index(os.path.join('train', 'n02', 'images', 'n02_2.JPEG'))
  assert train.labels[i] == 1
  np.testing.assert_array_equal(train.boxes[i], [2, 3, 42, 52])
  assert len(val) == 4 and train.images.shape == (9, 64, 64, 3)
  np.testing.assert_array_equal(val.labels, [2, 0, 0, 1])
  said.clear()
  assert prepare.prepare('tiny_imagenet', data_dir, say=said.append,
                         url='http://127.0.0.1:9/never.zip') == root
  assert said == [f'tiny_imagenet: already prepared in {root}; nothing to do.']


def test_tiny_imagenet_wrong_checksum_leaves_no_folder(tmp_path):
  url, digest = _tiny_zip(tmp_path / 'tiny.zip')
  data_dir = str(tmp_path / 'data')
  wrong = ('0' * 64)
  with pytest.raises(UserError) as e:
    prepare.prepare('tiny_imagenet', data_dir, say=lambda _: None, url=url,
                    sha256=wrong)
  assert f'SHA-256 {digest}, not the expected {wrong}' in str(e.value)
  assert os.listdir(data_dir) == []  # No folder, complete or not.
  with pytest.raises(UserError, match='No Tiny-ImageNet folder'):
    sources.load_split('tiny_imagenet', 'train', data_dir, None)


def test_tiny_imagenet_interrupted_unpack_leaves_no_half_folder(
    tmp_path, monkeypatch):
  """The disk fills half-way through unpacking: no tiny-imagenet-200 that
  looks complete (wnids.txt is the zip's first member) is left behind."""
  url, digest = _tiny_zip(tmp_path / 'tiny.zip')
  real_extract = zipfile.ZipFile.extract

  def extractall(self, path=None, members=None, pwd=None):
    names = self.namelist()
    for name in names[:len(names) // 2]:
      real_extract(self, name, path)
    raise OSError(28, 'No space left on device')

  monkeypatch.setattr(zipfile.ZipFile, 'extractall', extractall)
  data_dir = str(tmp_path / 'data')
  with pytest.raises(UserError, match='Cannot unpack.*No space left'):
    prepare.prepare('tiny_imagenet', data_dir, say=lambda _: None, url=url,
                    sha256=digest)
  assert os.listdir(data_dir) == []
  assert sources.find_tiny_imagenet(data_dir) is None


def test_tiny_imagenet_offline_says_what_it_tried_and_where_to_put_it(
    tmp_path, monkeypatch):
  def offline(url, timeout=None):
    raise urllib.error.URLError(OSError(101, 'Network is unreachable'))

  monkeypatch.setattr(prepare.urllib.request, 'urlopen', offline)
  data_dir = str(tmp_path / 'data')
  with pytest.raises(UserError) as e:
    prepare.prepare('tiny_imagenet', data_dir, say=lambda _: None)
  message = str(e.value)
  assert prepare.TINY_IMAGENET_URL in message
  assert 'copy its tiny-imagenet-200 folder' in message and \
      f'into {data_dir}.' in message
  assert f'ssl-pairs prepare-data tiny_imagenet --data_dir={data_dir}' in \
      message
  assert message.count('. ') == 0 and '\n' not in message  # One sentence.
  assert _no_leftovers(data_dir)


# ------------------------------------------------- missing data, auto-prepare


@pytest.mark.parametrize('name', ['tiny_imagenet', 'cifar10', 'cifar100',
                                  'stl10'])
def test_missing_data_names_the_prepare_command(tmp_path, name):
  data_dir = str(tmp_path / 'empty')
  os.makedirs(data_dir)
  with pytest.raises(UserError) as e:
    sources.load_split(name, 'train', data_dir, None)
  assert f'`ssl-pairs prepare-data {name} --data_dir={data_dir}`' in str(
      e.value)
  assert 'TFRecord' not in str(e.value)  # Nothing is there at all.


def test_tfrecord_note_only_for_a_tfrecord_copy_on_disk(tmp_path):
  version = tmp_path / 'stl10' / '1.0.0'
  version.mkdir(parents=True)
  (version / 'stl10-train.tfrecord-00000-of-00001').write_bytes(b'')
  with pytest.raises(UserError, match='prepared as TFRecord only') as e:
    sources.load_split('stl10', 'train', str(tmp_path), None)
  assert 'tfds convert_format' in str(e.value)
  assert str(tmp_path / 'stl10') in str(e.value)


def _fake_downloader(zip_path, calls):
  """prepare.download_file without a network: copies the local zip."""
  def download(url, path, say=None, data_dir='', expected_bytes=None):
    calls.append(url)
    with open(zip_path, 'rb') as src, open(path, 'wb') as dst:
      data = src.read()
      dst.write(data)
    return hashlib.sha256(data).hexdigest()
  return download


def test_load_split_prepares_a_missing_tiny_imagenet_only_when_asked(
    tmp_path, monkeypatch):
  _, digest = _tiny_zip(tmp_path / 'tiny.zip')
  calls = []
  monkeypatch.setattr(prepare, 'download_file',
                      _fake_downloader(tmp_path / 'tiny.zip', calls))
  monkeypatch.setattr(prepare, 'TINY_IMAGENET_SHA256', digest)
  data_dir = str(tmp_path / 'data')
  with pytest.raises(UserError, match='ssl-pairs prepare-data tiny_imagenet'):
    sources.load_split('tiny_imagenet', 'train', data_dir, None,
                       download=False)
  assert calls == [] and not os.path.exists(data_dir)
  train = sources.load_split('tiny_imagenet', 'train', data_dir, None,
                             download=True)
  assert calls == [prepare.TINY_IMAGENET_URL] and len(train) == 9
  # Present now: read as is, nothing downloaded again.
  assert len(sources.load_split('tiny_imagenet', 'val', data_dir, 32,
                                download=True)) == 4
  assert calls == [prepare.TINY_IMAGENET_URL]


def test_present_data_never_downloads(real_data_dir, monkeypatch):
  """The real data dir's npz shards and tiny-imagenet-200-sub100 load as
  before with download=True: nothing is prepared."""
  def fail(*args, **kwargs):
    raise AssertionError('prepare called for data that is present')

  monkeypatch.setattr(prepare, 'prepare', fail)
  test = sources.load_split('cifar10', 'test', real_data_dir, 32,
                            download=True)
  assert len(test) == 10000
  assert sources.find_tiny_imagenet(real_data_dir).endswith('-sub100')
  assert sources.has_split('tiny_imagenet', 'val', real_data_dir)
  val = sources.load_split('tiny_imagenet', 'val', real_data_dir, 64,
                           download=True)
  assert len(val) == 2000


def test_training_and_evaluation_pass_data_download(tmp_path, monkeypatch):
  """config.data.download reaches load_split for the pretraining data and
  the required eval datasets; optional ('?') ones are never downloaded."""
  from conftest import load_config  # pylint: disable=g-import-not-at-top
  from ssl_pairs import train  # pylint: disable=g-import-not-at-top
  from ssl_pairs.evals import run as eval_run  # pylint: disable=g-import-not-at-top
  asked = []

  def no_network(name, data_dir, **kwargs):
    asked.append(name)
    raise UserError(f'offline ({name})')

  monkeypatch.setattr(prepare, 'prepare', no_network)
  config = load_config('simclr_sp')
  assert config.data.download is True
  config.data.data_dir = str(tmp_path)
  with pytest.raises(UserError, match=r'offline \(tiny_imagenet\)'):
    train.load_pretraining_data(config)
  assert asked == ['tiny_imagenet']
  config.data.download = False
  with pytest.raises(UserError, match='ssl-pairs prepare-data tiny_imagenet '
                     f'--data_dir={tmp_path}'):
    train.load_pretraining_data(config)
  assert asked == ['tiny_imagenet']
  asked.clear()
  from ssl_pairs import sharding  # pylint: disable=g-import-not-at-top
  config.eval.datasets = 'cifar100?,tiny_imagenet'
  evaluator = eval_run.Evaluator(config.eval, str(tmp_path), 16, config.model,
                                 sharding.make_mesh(), download=True)
  with pytest.raises(UserError, match=r'offline \(tiny_imagenet\)'):
    evaluator.sets()
  assert asked == ['tiny_imagenet']  # Not cifar100: it is optional.
  assert ('ssl-pairs prepare-data cifar100 '
          f'--data_dir={tmp_path}') in evaluator.skipped['cifar100']
  from configs import linear_eval  # pylint: disable=g-import-not-at-top
  assert linear_eval.get_config().download is True


# ---------------------------------------------------------------- the program


def test_program_checks_names_before_downloading(tmp_path, monkeypatch):
  from ssl_pairs.tools import prepare_data  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(prepare, 'prepare', lambda *a, **k: pytest.fail('ran'))
  with pytest.raises(UserError, match='Name the datasets'):
    prepare_data.main(['prepare-data'])
  with pytest.raises(UserError, match="Cannot prepare 'imagenet'"):
    prepare_data.main(['prepare-data', 'tiny_imagenet', 'imagenet'],
                      data_dir=str(tmp_path))


def test_program_prepares_from_a_file_url_then_says_already(tmp_path):
  url, digest = _tiny_zip(tmp_path / 'tiny.zip')
  data_dir = tmp_path / 'data'
  cmd = [sys.executable, '-m', 'ssl_pairs.tools.prepare_data',
         'tiny_imagenet', f'--data_dir={data_dir}',
         f'--tiny_imagenet_url={url}', f'--tiny_imagenet_sha256={digest}']
  env = dict(os.environ, PYTHONPATH=REPO)
  proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert f'prepared in {data_dir / "tiny-imagenet-200"}' in proc.stdout
  assert (data_dir / 'tiny-imagenet-200' / 'val' / 'val_annotations.txt'
          ).is_file()
  cmd[-1] = '--tiny_imagenet_sha256=' + '0' * 64  # Not used: already there.
  proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 0 and 'already prepared' in proc.stdout


def test_program_prepares_archives_from_flags_and_keyword_arguments(tmp_path):
  url, sha256, _, expected = _cifar10_archive(tmp_path / 'c10.tar.gz')
  data_dir = tmp_path / 'data'
  cmd = [sys.executable, '-m', 'ssl_pairs.tools.prepare_data', 'cifar10',
         f'--data_dir={data_dir}', f'--cifar10_url={url}',
         f'--cifar10_sha256={sha256}']
  env = dict(os.environ, PYTHONPATH=REPO)
  proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'cifar10: prepared cifar10_train_00.npz' in proc.stdout
  assert (data_dir / 'cifar10_test.npz').is_file()
  from ssl_pairs.tools import prepare_data  # pylint: disable=g-import-not-at-top
  url, sha256, _, fine, _ = _cifar100_archive(tmp_path / 'c100.tar.gz')
  prepare_data.main(['prepare-data', 'cifar100'], data_dir=str(data_dir),
                    urls={'cifar100': url}, sha256s={'cifar100': sha256})
  assert sources.load_split('cifar100', 'train', str(data_dir),
                            None).class_names == fine
  with pytest.raises(UserError, match='--cifar10_url.*--stl10_sha256'):
    prepare_data.main(['prepare-data', '--cifar10'], data_dir=str(data_dir))
