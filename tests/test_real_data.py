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


def test_scale_cpu_configs_build_compare_methods_matched_pairs(real_data_dir,
                                                               tmp_path):
  """``configs/<method>.py:scale=cpu`` trains on the very pairs of the
  matched files launch/compare_methods.py builds and trains on."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from configs import simclr  # pylint: disable=g-import-not-at-top
  src = sources.load_split('tiny_imagenet', 'train', real_data_dir, None)
  summary = pairs_lib.build_matched_sets(src, 'all', 100, 'images', 0,
                                         str(tmp_path))
  for switch, kind in (('sp', 'semantic'), ('pa', 'augmented')):
    config = simclr.get_config(f'pairs={switch},scale=cpu')
    ours = pairs_lib.build_pair_set(config.data, src)
    theirs = pairs_lib.read_pair_file(summary['files'][kind], src)
    assert len(ours.anchors) == summary[kind]['pairs'] == 200 * 100
    assert np.array_equal(ours.anchors, theirs.anchors)
    assert np.array_equal(ours.partners, theirs.partners)


def test_semantic_pair_batches_pair_two_images_of_one_class(real_data_dir,
                                                            tmp_path):
  """Every row of real-data PS batches: the partner is a different image of
  the anchor's class, and the (anchor, partner) pair is a row of the file."""
  from ssl_pairs.data import pipeline  # pylint: disable=g-import-not-at-top
  src = sources.load_split('tiny_imagenet', 'train', real_data_dir, None)
  files = pairs_lib.build_matched_sets(src, '20', 10, 'images', 0,
                                       str(tmp_path / 'pairs'))['files']
  config = load_config('simclr_sp')
  config.data.pairs, config.data.pair_file = 'pair_file', files['semantic']
  pair_set = pairs_lib.build_pair_set(config.data, src)
  rows = set(zip(pair_set.anchors.tolist(), pair_set.partners.tolist()))
  batches = pipeline.train_batches(src, pair_set, config.data, 64, seed=0)
  for step in (0, 3, 7):  # 200 pairs: steps 3 and 7 are in later epochs.
    b = batches[step]
    for anchor, partner, label in zip(b['index'], b['partner'], b['label']):
      assert anchor != partner and (int(anchor), int(partner)) in rows
      assert src.labels[anchor] == src.labels[partner] == label


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
  assert results['cifar10']['n_test'] == 200
  # 500 training images: 50 per class, under kNN@200's neighbours (flagged).
  assert results['cifar10']['note'].startswith(
      'kNN@200 uses more neighbours than the 50 training images')
  # The checkpoint evaluated on its own, through the restore path, gives the
  # very numbers of the end-of-run report (same subsets, same probe).
  from configs import linear_eval  # pylint: disable=g-import-not-at-top
  from ssl_pairs.evals import run as eval_run  # pylint: disable=g-import-not-at-top
  cfg = linear_eval.get_config()
  cfg.restore = str(tmp_path / 'run')
  cfg.eval.datasets = 'cifar10,tiny_imagenet'
  cfg.eval.train_limit, cfg.eval.test_limit = 500, 200
  cfg.eval.probe_max_iter = config.eval.probe_max_iter
  again = eval_run.evaluate_checkpoint(cfg, str(tmp_path / 'eval'))['results']
  for name, r in results.items():
    for k in ('probe', 'knn@20', 'knn@200'):
      assert again[name][k] == r[k], (name, k)
  saved = json.load(open(os.path.join(tmp_path, 'run', 'config.json')))
  assert saved['data']['pair_file'] == files['augmented']
