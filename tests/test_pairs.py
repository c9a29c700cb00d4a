"""Pair sources: semantic, augmented and pair files."""

import os

import numpy as np
import pytest

from configs import common
from ssl_pairs.data import pair_sets
from ssl_pairs.mining import tables as tables_lib
from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data import sources
from ssl_pairs.errors import UserError


def labels_of(counts):
  return np.concatenate([np.full(n, c) for c, n in enumerate(counts)])


def test_semantic_pairs_are_different_images_of_one_class():
  labels = labels_of([10, 7, 3])
  a, b = pairs_lib.semantic_pairs_from_labels(labels, np.arange(3), 0, seed=0)
  assert len(a) == 20  # One pair per image.
  assert np.all(a != b)
  np.testing.assert_array_equal(labels[a], labels[b])


def test_match_pairs_uses_2p_distinct_images_and_pa_uses_the_anchors():
  labels = labels_of([10, 10, 10])
  a, b = pairs_lib.semantic_pairs_from_labels(labels, np.arange(3), 4, seed=1)
  assert len(a) == 12
  assert len(np.unique(np.concatenate([a, b]))) == 24  # 2P per class.
  images = pairs_lib.augmented_images_from_labels(labels, np.arange(3), 4, 1)
  np.testing.assert_array_equal(np.sort(images), np.sort(a))


def test_match_images_pairs_within_the_augmented_images():
  labels = labels_of([10, 10])
  a, b = pairs_lib.semantic_pairs_from_labels(labels, np.arange(2), 4, seed=2,
                                              match='images')
  images = pairs_lib.augmented_images_from_labels(labels, np.arange(2), 4, 2)
  assert set(a) == set(images) and set(b) == set(images)
  assert np.all(a != b)
  # Every image is an anchor once and a partner once.
  assert sorted(a) == sorted(b) == sorted(images)


def test_more_pairs_than_images_cycles_without_self_pairs():
  labels = labels_of([3])
  a, b = pairs_lib.semantic_pairs_from_labels(labels, np.arange(1), 7, seed=0)
  assert len(a) == 7 and np.all(a != b)
  assert len(set(zip(a[:3], b[:3]))) == 3


def test_pairs_are_fixed_by_the_seed():
  labels = labels_of([20, 20])
  one = pairs_lib.semantic_pairs_from_labels(labels, np.arange(2), 5, seed=3)
  two = pairs_lib.semantic_pairs_from_labels(labels, np.arange(2), 5, seed=3)
  other = pairs_lib.semantic_pairs_from_labels(labels, np.arange(2), 5, seed=4)
  np.testing.assert_array_equal(one, two)
  assert not np.array_equal(one, other)


def test_a_class_with_one_image_is_a_clear_error():
  labels = labels_of([5, 1])
  with pytest.raises(UserError, match="Class 'b' has 1 image"):
    pairs_lib.semantic_pairs_from_labels(labels, np.arange(2), 0, 0,
                                         class_names=['a', 'b'])


def test_resample_partner_redraws_each_epoch_within_the_class():
  labels = labels_of([6, 6, 6])
  a, b = pairs_lib.semantic_pairs_from_labels(labels, np.arange(3), 0, 0)
  ps = pair_sets.PairSet(a, b, labels=labels, resample_partner=True, seed=0)
  partners = {}
  for epoch in range(30):
    for i in range(len(ps)):
      anchor, partner = ps.pair(i, epoch)
      assert anchor != partner and labels[anchor] == labels[partner]
      partners.setdefault(anchor, set()).add(partner)
  # Over 30 epochs every anchor meets all 5 other members of its class.
  assert all(len(p) == 5 for p in partners.values())
  assert ps.pair(3, 7) == ps.pair(3, 7)


def test_select_classes_by_count_and_by_file(tmp_path):
  labels = labels_of([2] * 6)
  names = [f'c{i}' for i in range(6)]
  picked = pairs_lib.select_classes(labels, names, '3', seed=0)
  assert len(picked) == 3 and len(set(picked)) == 3
  f = tmp_path / 'classes.txt'
  f.write_text('# comment\nc4\n\nc1  # second\n')
  np.testing.assert_array_equal(
      pairs_lib.select_classes(labels, names, str(f), 0), [1, 4])
  f.write_text('c9\n')
  with pytest.raises(UserError, match="not in the data"):
    pairs_lib.select_classes(labels, names, str(f), 0)


def test_build_pair_set_from_config(synthetic_npz):
  src = sources.load_split(synthetic_npz, 'train', '', None)
  cfg = common.data_config('semantic')
  cfg.pairs_per_class = 3
  ps = tables_lib.build_pair_set(cfg, src)
  assert len(ps) == 24 and not ps.is_augmented.any()
  cfg.pairs = 'augmented'
  pa = tables_lib.build_pair_set(cfg, src)
  assert len(pa) == 24 and pa.is_augmented.all()
  cfg.pairs = 'nearest'
  with pytest.raises(UserError, match='augmented, gps, pair_file, semantic'):
    tables_lib.build_pair_set(cfg, src)


def test_matched_pa_file_of_every_image_is_the_augmented_source(
    tmp_path, synthetic_npz):
  """build_pairs' PA file over all images of all classes lists exactly the
  pairs, in the order, that data.pairs='augmented' makes with the same seed,
  so a PA pair-file run and an all-images run train on identical batches
  (measured: 1250 identical SimCLR losses, docs/results/reproduce.md)."""
  src = sources.load_split(synthetic_npz, 'train', '', None)
  files = pairs_lib.build_matched_sets(src, 'all', 10, 'images', 0,
                                       str(tmp_path))['files']
  from_file = pairs_lib.read_pair_file(files['augmented'], src)
  cfg = common.data_config('augmented')
  cfg.pairs_per_class, cfg.classes = 0, 'all'
  built = tables_lib.build_pair_set(cfg, src)
  assert len(built) == len(src) == 80
  np.testing.assert_array_equal(from_file.anchors, built.anchors)
  np.testing.assert_array_equal(from_file.partners, built.partners)
  # Another seed orders the images differently: the order is not trivial.
  other = pairs_lib.build_matched_sets(src, 'all', 10, 'images', 1,
                                       str(tmp_path / 'seed1'))['files']
  assert not np.array_equal(
      pairs_lib.read_pair_file(other['augmented'], src).anchors, built.anchors)


def test_pair_file_round_trip_and_errors(tmp_path, synthetic_npz):
  src = sources.load_split(synthetic_npz, 'train', '', None)
  ps = pair_sets.PairSet(np.array([0, 10, 20]), np.array([1, 11, 20]))
  path = str(tmp_path / 'pairs.csv')
  pairs_lib.write_pair_file(path, ps, src)  # No paths: indices are written.
  back = pairs_lib.read_pair_file(path, src)
  np.testing.assert_array_equal(back.anchors, ps.anchors)
  np.testing.assert_array_equal(back.partners, ps.partners)
  with open(path, 'a') as f:
    f.write('5000,1,class0\n')
  with pytest.raises(UserError, match="names 1 image not in .*first: row 4, "
                     "'5000'"):
    pairs_lib.read_pair_file(path, src)
  # A partner of another class than its anchor is refused with the row, both
  # images and both classes (images 0-9 are class0, 10-19 class1).
  for row in ('0,15,class0', '0,15', '0,15,class1'):
    with open(path, 'w') as f:
      f.write(f'anchor,partner,class\n2,3\n{row}\n')
    with pytest.raises(UserError, match="row 2 pairs 0 \\(class 'class0'\\) "
                       "with 15 \\(class 'class1'\\)"):
      pairs_lib.read_pair_file(path, src)
  with open(path, 'w') as f:
    f.write('anchor,partner,class\n0,1,class3\n')
  with pytest.raises(UserError, match="says class 'class3'"):
    pairs_lib.read_pair_file(path, src)
  with open(path, 'w') as f:
    f.write('0,1\n2,3\n0,1\n')
  with pytest.raises(UserError, match='row 3 repeats row 1'):
    pairs_lib.read_pair_file(path, src)
  with open(path, 'w') as f:
    f.write('0,1,zebra\n')
  with pytest.raises(UserError, match="unknown class 'zebra'"):
    pairs_lib.read_pair_file(path, src)
  with pytest.raises(UserError, match='does not exist'):
    pairs_lib.read_pair_file(str(tmp_path / 'nope.csv'), src)


def test_pair_file_with_paths_from_an_image_folder(tmp_path):
  from PIL import Image
  for c in ('cat', 'dog'):
    os.makedirs(tmp_path / c)
    for i in range(3):
      Image.new('RGB', (8, 8), (i * 40, 0, 0)).save(tmp_path / c / f'{i}.png')
  src = sources.load_split(str(tmp_path), 'train', '', 8)
  (tmp_path / 'p.csv').write_text(
      'anchor,partner,class\ncat/0.png,cat/2.png,cat\ndog/1.png,dog/1.png,dog\n')
  ps = pairs_lib.read_pair_file(str(tmp_path / 'p.csv'), src)
  assert [src.paths[i] for i in ps.anchors] == ['cat/0.png', 'dog/1.png']
  assert list(ps.is_augmented) == [False, True]
  (tmp_path / 'q.csv').write_text('cat/0.png,cat/9.png\n')
  with pytest.raises(UserError, match="first: row 1, 'cat/9.png'"):
    pairs_lib.read_pair_file(str(tmp_path / 'q.csv'), src)


def _gps_config(**gps):
  from configs import common
  cfg = common.data_config('gps')
  cfg.image_size = 16
  cfg.gps.update(gps)
  return cfg


def test_gps_partners_are_prior_neighbours_drawn_per_epoch(synthetic_npz,
                                                           tmp_path):
  from ssl_pairs.data import sources
  from ssl_pairs.mining.neighbours import nearest_neighbours
  src = sources.load_split(synthetic_npz, 'train', '', 16)
  cfg = _gps_config(k=3)
  ps = tables_lib.build_pair_set(cfg, src, cache_dir=str(tmp_path))
  assert len(ps) == len(src)
  pixels = src.images.reshape(len(src), -1).astype(np.float32) / 255.0
  expected, _ = nearest_neighbours(pixels, 3)
  np.testing.assert_array_equal(ps.neighbours, expected)
  # Each draw is one of the anchor's neighbours, never the anchor itself;
  # draws are deterministic per epoch and change across epochs.
  draws = [[ps.pair(i, e) for i in range(len(ps))] for e in range(3)]
  for epoch in draws:
    for anchor, partner in epoch:
      assert partner in ps.neighbours[anchor] and partner != anchor
  assert draws[0] == [ps.pair(i, 0) for i in range(len(ps))]
  assert draws[0] != draws[1]
  # Every neighbour gets drawn (uniform over k), over enough epochs.
  seen = {ps.pair(0, e)[1] for e in range(60)}
  assert seen == set(ps.neighbours[0].tolist())
  # The synthetic classes differ in colour and stripes: pixel neighbours
  # mostly share the label (the diagnostic logged at training time).
  assert ps.precision(src.labels) > 0.8
  # The prior is cached in the workdir and reused.
  assert len(list(tmp_path.glob('prior_*.npy'))) == 1


def test_gps_prior_from_an_npy_file_and_include_self(synthetic_npz, tmp_path):
  from ssl_pairs.data import sources
  from ssl_pairs.errors import UserError
  src = sources.load_split(synthetic_npz, 'train', '', 16)
  # A 1-D embedding: image i's neighbours are i±1, i±2, ...
  path = str(tmp_path / 'prior.npy')
  np.save(path, np.arange(len(src), dtype=np.float32)[:, None] * 3.0)
  ps = tables_lib.build_pair_set(_gps_config(k=2, prior=f'npy:{path}'), src)
  assert sorted(ps.neighbours[10].tolist()) == [9, 11]
  ps = tables_lib.build_pair_set(
      _gps_config(k=2, prior=f'npy:{path}', include_self=True), src)
  assert ps.neighbours[10, 0] == 10
  np.save(path, np.zeros((3, 2), np.float32))
  with pytest.raises(UserError, match='one row per image'):
    tables_lib.build_pair_set(_gps_config(prior=f'npy:{path}'), src)
  with pytest.raises(UserError, match="Unknown data.gps.prior 'clip'"):
    tables_lib.build_pair_set(_gps_config(prior='clip'), src)
