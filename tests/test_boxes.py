"""Box probe and object-crop classification (ssl_pairs/evals/boxes.py)."""

import json
import os
import sys
import types

import jax
import ml_collections
import numpy as np
import pytest

from conftest import few_class_tiny_imagenet

from configs import common
from ssl_pairs import sharding
from ssl_pairs.errors import UserError
from ssl_pairs.evals import boxes
from ssl_pairs.evals import run as eval_run
from ssl_pairs.models import get_backbone

TINY_MODEL = dict(arch='resnet_tiny', width_multiplier=1.0, stem='cifar',
                  dtype='float32')


def _eval_config(**overrides):
  c = common.eval_config()
  c.update(overrides)
  return c


def _evaluator(eval_config, data_dir, image_size=32):
  return eval_run.Evaluator(eval_config, str(data_dir), image_size,
                            ml_collections.ConfigDict(TINY_MODEL),
                            sharding.make_mesh())


# ------------------------------------------------------------------ geometry


def test_iou_of_hand_computed_boxes():
  a = np.array([0.0, 0.0, 2.0, 2.0])
  assert boxes.box_iou(a, a) == pytest.approx(1.0)
  assert boxes.box_iou(a, [3.0, 3.0, 4.0, 4.0]) == 0.0          # disjoint
  assert boxes.box_iou(a, [2.0, 0.0, 4.0, 2.0]) == 0.0          # touching
  # Shifted by half its width: overlap 1×2 = 2, union 4 + 4 − 2 = 6.
  assert boxes.box_iou(a, [1.0, 0.0, 3.0, 2.0]) == pytest.approx(1 / 3)
  # Nested: the inner quarter of the box, 1 / 4.
  assert boxes.box_iou(a, [0.5, 0.5, 1.5, 1.5]) == pytest.approx(0.25)
  # Empty boxes have no area: IoU 0, also with themselves (not NaN).
  assert boxes.box_iou([1, 1, 1, 2], [1, 1, 1, 2]) == 0.0
  # Broadcasts over rows.
  np.testing.assert_allclose(
      boxes.box_iou(np.array([a, a]), np.array([a, [1, 0, 3, 2]])), [1, 1 / 3])


def test_box_parametrisation_and_tiny_imagenet_normalisation():
  b = np.array([[0.1, 0.2, 0.5, 0.9], [0.0, 0.0, 1.0, 1.0]])
  np.testing.assert_allclose(boxes.boxes_to_targets(b),
                             [[0.3, 0.55, 0.4, 0.7], [0.5, 0.5, 1, 1]])
  np.testing.assert_allclose(
      boxes.targets_to_boxes(boxes.boxes_to_targets(b)), b)
  # Predictions are clipped to the image; a negative side is an empty box.
  np.testing.assert_allclose(
      boxes.targets_to_boxes([[0.9, 0.5, 0.4, -0.2]]), [[0.7, 0.5, 1, 0.5]])
  # Tiny-ImageNet corners are inclusive pixels of the 64-px original.
  np.testing.assert_allclose(
      boxes.tiny_imagenet_boxes([[0, 0, 63, 63], [0, 32, 31, 63]]),
      [[0, 0, 1, 1], [0, 0.5, 0.5, 1]])


# ---------------------------------------------------------------- the head


def _random_boxes(n, rng):
  c = rng.uniform(0.25, 0.75, (n, 2))
  s = rng.uniform(0.1, 0.5, (n, 2))
  return np.concatenate([c - s / 2, c + s / 2], axis=1)


def test_head_recovers_boxes_that_the_features_encode():
  rng = np.random.default_rng(0)
  btr, bte = _random_boxes(600, rng), _random_boxes(200, rng)
  mix = rng.normal(size=(4, 32))  # Box coordinates spread over 32 features.

  def feats(b):
    return b @ mix + 0.01 * rng.normal(size=(len(b), 32)) + 3.0

  r = boxes.box_probe(feats(btr), btr, feats(bte), bte)
  assert r['box_miou'] >= 90 and r['box_iou50'] >= 99
  # The boxes vary in place and size, so the mean box is far worse.
  assert r['box_miou_meanbox'] < 50
  assert r['box_l2'] < 1  # Held-out selection did not shrink to the mean.


def test_head_on_random_features_is_no_better_than_the_mean_box():
  rng = np.random.default_rng(1)
  btr, bte = _random_boxes(400, rng), _random_boxes(300, rng)
  r = boxes.box_probe(rng.normal(size=(400, 64)), btr,
                      rng.normal(size=(300, 64)), bte)
  assert r['box_miou'] <= r['box_miou_meanbox'] + 1.0
  assert r['box_miou'] >= r['box_miou_meanbox'] - 3.0  # Shrunk, not overfit.
  assert r['box_l2'] >= 10  # Chosen on the held-out part: strong shrinkage.
  # More features than images (the dual form) gives the same shrinkage.
  r = boxes.box_probe(rng.normal(size=(400, 800)), btr,
                      rng.normal(size=(300, 800)), bte)
  assert r['box_miou'] <= r['box_miou_meanbox'] + 1.0


def test_scores_and_the_mean_box_are_of_the_training_boxes():
  rng = np.random.default_rng(3)
  # Every training box is the left half: the head and the baseline both
  # predict it, whatever the features.
  train = np.tile([[0.0, 0.0, 0.5, 1.0]], (50, 1))
  test = np.array([[0, 0, 1, 1], [0, 0, 0.5, 1], [0.25, 0, 0.75, 1],
                   [0.5, 0, 1, 1]])  # IoU 1/2, 1, 1/3, 0.
  r = boxes.box_probe(rng.normal(size=(50, 8)), train,
                      rng.normal(size=(4, 8)), test)
  for prefix in ('box_miou', 'box_iou50'):
    assert r[prefix] == pytest.approx(r[f'{prefix}_meanbox'])
  assert r['box_miou'] == pytest.approx(100 * (0.5 + 1 + 1 / 3 + 0) / 4)
  assert r['box_iou50'] == pytest.approx(50.0)  # IoU ≥ 0.5 counts 1/2.


def test_primal_and_dual_ridge_agree():
  rng = np.random.default_rng(2)
  x, y = rng.normal(size=(30, 50)), rng.normal(size=(30, 4))
  (w, b), = boxes._ridge_path(x, y, [0.3]).values()
  # The primal solution of the same objective (N < D takes the dual path).
  xc, yc = x - x.mean(0), y - y.mean(0)
  w_ref = np.linalg.solve(xc.T @ xc + 30 * 0.3 * np.eye(50), xc.T @ yc)
  np.testing.assert_allclose(w, w_ref, atol=1e-8)
  np.testing.assert_allclose(b, y.mean(0) - x.mean(0) @ w_ref, atol=1e-8)


# ------------------------------------------------------------ configuration


def test_defaults_are_off_and_leave_the_evaluator_unchanged(tmp_path):
  c = common.eval_config()
  assert c.box_probe is False and c.object_crops is False
  assert c.box_datasets == 'tiny_imagenet,voc2007?'
  assert not _evaluator(c, tmp_path).box_tasks


@pytest.mark.parametrize('option', ['box_probe', 'object_crops'])
@pytest.mark.parametrize('name', ['cifar10', '/data/mine.npz', 'voc2012?'])
def test_a_dataset_without_boxes_is_one_sentence(tmp_path, option, name):
  c = _eval_config(**{option: True, 'box_datasets': f'tiny_imagenet,{name}'})
  with pytest.raises(UserError) as e:
    _evaluator(c, tmp_path)
  msg = str(e.value)
  assert f'eval.{option} needs object boxes' in msg
  assert 'tiny_imagenet and voc2007' in msg
  assert f'--config.eval.{option}=False' in msg
  assert msg.count('. ') == 0 and msg.endswith('.')


def _fake_tfds(monkeypatch, data_source):
  module = types.ModuleType('tensorflow_datasets')
  module.data_source = data_source
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', module)


def test_voc_not_prepared_is_skipped_with_how_to_prepare_it(tmp_path,
                                                            monkeypatch):
  monkeypatch.setenv('TFDS_DATA_DIR', str(tmp_path / 'tfds'))
  c = _eval_config(box_probe=True, object_crops=True, box_datasets='voc2007?')

  def not_prepared(name, **kwargs):
    raise FileNotFoundError(f'{name} not found')

  for tfds_module in (None, not_prepared):  # Not installed / not prepared.
    if tfds_module is None:
      monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)
    else:
      _fake_tfds(monkeypatch, tfds_module)
    ev = _evaluator(c, tmp_path)
    assert ev.box_tasks.sets() == []
    assert set(ev.skipped) == {'voc2007_boxes', 'voc2007_crops'}
    note = ev.skipped['voc2007_boxes']
    assert ('`tfds build voc/2007 --file_format=array_record '
            f'--data_dir={tmp_path}`') in note
    assert 'needs tensorflow' in note and note.count('. ') == 0
    assert ('tensorflow-datasets is not installed' in note) == (
        tfds_module is None)
  # Asked for without '?', the same sentence is the error.
  ev = _evaluator(_eval_config(box_probe=True, box_datasets='voc2007'),
                  tmp_path)
  with pytest.raises(UserError, match='tfds build voc/2007'):
    ev.box_tasks.sets()


def test_voc_reads_the_largest_object_and_crops_it(tmp_path, monkeypatch):
  rng = np.random.default_rng(0)

  def record(i, h, w):
    image = np.zeros((h, w, 3), np.uint8)
    # Object 1 (label 3+i%2) is the larger one: fill it white.
    ymin, xmin, ymax, xmax = 0.5, 0.25, 1.0, 0.75
    image[int(ymin * h):int(ymax * h), int(xmin * w):int(xmax * w)] = 255
    return {'image': image, 'objects': {
        'bbox': np.array([[0, 0, 0.1, 0.1], [ymin, xmin, ymax, xmax]],
                         np.float32),
        'label': np.array([0, 3 + i % 2])}}

  splits = {s: [record(i, int(rng.integers(40, 80)),
                       int(rng.integers(40, 80))) for i in range(n)]
            for s, n in (('train', 6), ('test', 4))}
  asked = []

  def data_source(name, split, data_dir, download):
    asked.append((name, split, download))
    return splits[split]

  _fake_tfds(monkeypatch, data_source)
  s = boxes.load_box_set('voc2007', str(tmp_path), 32,
                         _eval_config(train_limit=0, test_limit=0), 0)
  assert ('voc/2007', 'train', False) in asked
  assert (len(s.train), len(s.test)) == (6, 4)
  assert s.train.images.shape == (6, 32, 32, 3)
  np.testing.assert_allclose(s.train_boxes, [[0.25, 0.5, 0.75, 1.0]] * 6)
  np.testing.assert_array_equal(s.train.labels, [3, 4, 3, 4, 3, 4])
  train_crops, test_crops = s.crops()
  # The crop is the square around the white object: mostly white, where the
  # whole image is a quarter white.
  assert s.train.images.mean() < 100
  assert train_crops.images.mean() > 200 and test_crops.images.shape == (
      4, 32, 32, 3)


# ------------------------------------------------------------- real data


def test_real_tiny_imagenet_box_probe_and_object_crops(real_data_dir,
                                                       tmp_path):
  data_dir = few_class_tiny_imagenet(real_data_dir, tmp_path / 'data', 10)
  c = _eval_config(datasets='tiny_imagenet', box_probe=True,
                   object_crops=True, knn_k='5,20', probe_max_iter=30,
                   batch_size=128, box_datasets='tiny_imagenet,voc2007?')
  ev = _evaluator(c, data_dir, image_size=32)
  net, _ = get_backbone(ml_collections.ConfigDict(TINY_MODEL))
  variables = net.init(jax.random.key(0), np.zeros((1, 32, 32, 3)))
  results = ev(variables)
  assert set(results) == {'tiny_imagenet', 'tiny_imagenet_boxes',
                          'tiny_imagenet_crops'}
  assert 'voc2007_boxes' in ev.skipped  # Not prepared here.
  per_class = len(os.listdir(os.path.join(
      data_dir, 'tiny-imagenet-200-10', 'train',
      sorted(os.listdir(os.path.join(data_dir, 'tiny-imagenet-200-10',
                                     'train')))[0], 'images')))
  b, cr = results['tiny_imagenet_boxes'], results['tiny_imagenet_crops']
  for r in (b, cr):
    assert (r['n_train'], r['n_test']) == (results['tiny_imagenet']['n_train'],
                                           results['tiny_imagenet']['n_test'])
  assert b['n_train'] == 10 * per_class and b['n_test'] == 10 * 10
  for k in ('box_miou', 'box_iou50', 'box_miou_meanbox', 'box_iou50_meanbox'):
    assert np.isfinite(b[k]) and 0 <= b[k] <= 100, (k, b[k])
  assert b['box_miou_meanbox'] > 20  # Tiny-ImageNet objects are large.
  for k in ('knn@5', 'knn@20', 'probe'):
    assert np.isfinite(cr[k]) and 0 <= cr[k] <= 100, (k, cr[k])
  assert b['protocol']['task'] == 'box_probe'
  assert cr['protocol']['task'] == 'object_crops'
  # The crops are other images than the full ones, at the eval resolution.
  full = ev.sets()[0].test.images
  crops = ev.box_tasks._crops['tiny_imagenet'][1].images
  assert crops.shape == full.shape and np.abs(
      crops.astype(int) - full).mean() > 5
  # The report shows them beside the classification row.
  results = {k: dict(r, step=0) for k, r in results.items()}
  eval_run.write_report(str(tmp_path), results, {'run': 'boxes', 'step': 0})
  md = (tmp_path / 'eval.md').read_text()
  assert 'box mIoU %' in md and 'mean-box mIoU %' in md
  assert '| tiny_imagenet_boxes |' in md and 'box probe: 32 px' in md
  assert 'object crops (train and test cut to their boxes), 32 px' in md
  saved = json.loads((tmp_path / 'eval.json').read_text())['results']
  assert saved['tiny_imagenet_boxes']['box_miou'] == b['box_miou']


def test_table_without_box_results_is_unchanged():
  r = {'cifar10': {'knn@20': 50.0, 'probe': 60.0, 'n_train': 1, 'n_test': 1}}
  header = eval_run.markdown_table(r).splitlines()[0]
  assert header == ('| dataset | knn@20 top-1 % | probe top-1 % | '
                    'train / test images | step | note |')
  r['tiny_imagenet_boxes'] = {'box_miou': 41.0, 'box_miou_meanbox': 38.0,
                              'box_iou50': 35.0}
  lines = eval_run.markdown_table(r).splitlines()
  assert lines[0].startswith('| dataset | knn@20 top-1 % | probe top-1 % | '
                             'box mIoU % | mean-box mIoU % | box IoU≥0.5 % |')
  assert lines[2].startswith('| cifar10 | 50.00 | 60.00 | - | - | - |')
  assert lines[3].startswith('| tiny_imagenet_boxes | - | - | 41.00 | 38.00 | '
                             '35.00 |')
