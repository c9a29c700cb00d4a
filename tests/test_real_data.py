"""Integration on the real data: build_pairs → pair_file training → evaluation."""

import csv
import json
import os

from conftest import load_config
from ssl_pairs import train
from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data import sources


def test_build_pairs_matched_sets_on_tiny_imagenet(real_data_dir, tmp_path):
  src = sources.load_split('tiny_imagenet', 'train', real_data_dir, None)
  summary = pairs_lib.build_matched_sets(
      src, 'tiny_imagenet_cifar10_overlap', 30, 'pairs', 0, str(tmp_path))
  assert len(summary['classes']) == 23
  ps, pa = summary['semantic'], summary['augmented']
  assert ps['pairs'] == pa['pairs'] == 23 * 30
  assert ps['distinct_images'] == 2 * 23 * 30 and ps['same_image_pairs'] == 0
  assert ps['same_class_fraction'] == 1.0
  assert pa['distinct_images'] == 23 * 30 and pa['same_image_pairs'] == 690
  with open(summary['files']['semantic']) as f:
    rows = list(csv.DictReader(f))
  assert all(r['anchor'].startswith('train/') and r['anchor'] != r['partner']
             for r in rows)
  # --match=images: PS pairs are made among exactly PA's images.
  summary = pairs_lib.build_matched_sets(src, '5', 20, 'images', 1,
                                         str(tmp_path / 'images'))
  ps = pairs_lib.read_pair_file(summary['files']['semantic'], src)
  pa = pairs_lib.read_pair_file(summary['files']['augmented'], src)
  assert set(ps.anchors) == set(ps.partners) == set(pa.anchors)


def test_pair_file_pretraining_and_transfer_eval(real_data_dir, tmp_path):
  src = sources.load_split('tiny_imagenet', 'train', real_data_dir, None)
  files = pairs_lib.build_matched_sets(src, '10', 8, 'pairs', 0,
                                       str(tmp_path / 'pairs'))['files']
  config = load_config('simclr_pa')
  config.data.data_dir = real_data_dir
  config.data.pairs = 'pair_file'
  config.data.pair_file = files['augmented']
  config.data.classes = 'all'
  config.eval.datasets = 'cifar10,tiny_imagenet,cifar100?'
  config.eval.train_limit = 500
  config.eval.test_limit = 200
  report = train.run(config, str(tmp_path / 'run'))
  results = report['results']
  assert set(results) == {'cifar10', 'tiny_imagenet'}
  assert 'cifar100' in report['skipped']
  assert results['cifar10']['n_test'] == 200 and 'note' not in results['cifar10']
  for r in results.values():
    assert 0 <= r['probe'] <= 100 and 0 <= r['knn@20'] <= 100
  saved = json.load(open(os.path.join(tmp_path, 'run', 'config.json')))
  assert saved['data']['pair_file'] == files['augmented']
