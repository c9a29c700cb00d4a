"""grain pipeline: determinism, process slicing, resume position, pair transform."""

import jax
import numpy as np

from configs import common
from ssl_pairs.data import pair_sets
from ssl_pairs import sharding
from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data import pipeline
from ssl_pairs.data import sources


def make(synthetic_npz, kind='semantic', preset='strong', pair_transform='default',
         batch=8, seed=0, process_index=0, process_count=1):
  src = sources.load_split(synthetic_npz, 'train', '', 16)
  cfg = common.data_config(kind)
  cfg.image_size = 16
  cfg.augment.preset = preset
  cfg.pair_transform = pair_transform
  ps = pairs_lib.build_pair_set(cfg, src)
  return src, ps, pipeline.train_batches(src, ps, cfg, batch, seed,
                                         process_index, process_count)


def assert_batches_equal(a, b):
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])


def test_same_seed_same_batches_other_seed_other_batches(synthetic_npz):
  _, _, one = make(synthetic_npz)
  _, _, two = make(synthetic_npz)
  _, _, other = make(synthetic_npz, seed=1)
  for step in (0, 3, 25):  # 25 is in the third epoch (80 pairs / 8).
    assert_batches_equal(one[step], two[step])
  assert not np.array_equal(one[0]['view1'], other[0]['view1'])
  b = one[0]
  assert b['view1'].shape == (8, 16, 16, 3) and b['view1'].dtype == np.uint8
  assert b['label'].dtype == np.int32


def test_each_epoch_visits_every_pair_once_in_a_new_order(synthetic_npz):
  _, ps, batches = make(synthetic_npz)
  epoch0 = np.concatenate([batches[s]['index'] for s in range(10)])
  epoch1 = np.concatenate([batches[s]['index'] for s in range(10, 20)])
  np.testing.assert_array_equal(np.sort(epoch0), np.sort(ps.anchors))
  np.testing.assert_array_equal(np.sort(epoch1), np.sort(ps.anchors))
  assert not np.array_equal(epoch0, epoch1)


def test_processes_together_see_the_single_process_batch(synthetic_npz):
  _, _, whole = make(synthetic_npz)
  parts = [make(synthetic_npz, process_index=p, process_count=2)[2]
           for p in range(2)]
  for step in (0, 7, 12):
    joined = {k: np.concatenate([parts[0][step][k], parts[1][step][k]])
              for k in whole[step]}
    assert_batches_equal(joined, whole[step])


def test_semantic_views_come_from_two_images_of_one_class(synthetic_npz):
  src, ps, batches = make(synthetic_npz, preset='none')
  pairs = set(zip(ps.anchors.tolist(), ps.partners.tolist()))
  for step in (0, 13):
    b = batches[step]
    for v1, v2, idx, partner, label in zip(b['view1'], b['view2'], b['index'],
                                           b['partner'], b['label']):
      assert (int(idx), int(partner)) in pairs and idx != partner
      assert src.labels[partner] == src.labels[idx] == label
      np.testing.assert_array_equal(v1, src[idx])
      np.testing.assert_array_equal(v2, src[partner])  # No pair transform.


def _self_pair_views(src, pair_set, pair_transform, on='host'):
  cfg = common.data_config('augmented')
  cfg.image_size = 16
  cfg.augment.preset = 'none'
  cfg.pair_transform = pair_transform
  cfg.augment_on = on
  return pipeline.train_batches(src, pair_set, cfg, 8, 0)[0]


def test_only_augmented_pairs_get_the_pair_transform(synthetic_npz):
  """A GPS self-neighbour (include_self), a one-frame shot's temporal pair
  and an SPPS base pair are an image with itself, but not augmented pairs:
  their partner must not get the pair transform (host and device paths)."""
  from ssl_pairs.data import video
  src = sources.load_split(synthetic_npz, 'train', '', 16)
  everyone = np.arange(len(src))
  self_pairs = {
      'gps': pair_sets.NeighbourPairSet(everyone, everyone,
                                        neighbours=everyone[:, None]),
      'temporal': video.TemporalPairSet(everyone, everyone, shots=everyone),
      'spps': pair_sets.PositiveSetPairs(
          everyone, everyone, positives=everyone[:, None],
          positive_mask=np.zeros((len(src), 1), bool)),
  }
  for name, ps in self_pairs.items():
    b = _self_pair_views(src, ps, 'default')
    np.testing.assert_array_equal(b['index'], b['partner'])
    np.testing.assert_array_equal(b['view1'], b['view2'], err_msg=name)
    assert not _self_pair_views(src, ps, 'default', 'device')['same'].any()
  augmented = pair_sets.PairSet(everyone, everyone)
  b = _self_pair_views(src, augmented, 'default')
  assert not np.array_equal(b['view1'], b['view2'])
  assert _self_pair_views(src, augmented, 'default', 'device')['same'].all()


def test_augmented_partner_gets_the_pair_transform(synthetic_npz):
  src, _, plain = make(synthetic_npz, 'augmented', preset='none',
                       pair_transform='none')
  b = plain[0]
  np.testing.assert_array_equal(b['view1'], b['view2'])
  np.testing.assert_array_equal(b['view1'][0], src[b['index'][0]])
  _, _, paired = make(synthetic_npz, 'augmented', preset='none')
  b = paired[0]
  np.testing.assert_array_equal(b['view1'][0], src[b['index'][0]])
  assert not np.array_equal(b['view1'], b['view2'])


def test_device_iterator_state_resumes_at_the_next_batch(synthetic_npz):
  _, _, batches = make(synthetic_npz)
  mesh = sharding.make_mesh()
  data = sharding.data_sharding(mesh)
  it = pipeline.DeviceIterator(batches, data, num_threads=2, prefetch=3)
  seen = [jax.device_get(next(it)) for _ in range(5)]
  state = it.state()
  assert state == {'next_index': 5}  # Not the prefetched position.
  resumed = pipeline.DeviceIterator(batches, data, start_state=state)
  assert_batches_equal(jax.device_get(next(resumed)), batches[5])
  assert_batches_equal(seen[4], batches[4])


def test_batch_larger_than_the_data_is_a_clear_error(synthetic_npz):
  import pytest
  from ssl_pairs.errors import UserError
  with pytest.raises(UserError, match='larger than the 80 pairs'):
    make(synthetic_npz, batch=128)


def test_multicrop_local_views_come_alternately_from_anchor_and_partner(
    tmp_path):
  """Each image a distinct flat colour, so a crop shows which image it is of."""
  n = 16
  colours = np.stack([np.arange(n) * 15, 255 - np.arange(n) * 15,
                      np.full(n, 100)], 1).astype(np.uint8)
  images = np.broadcast_to(colours[:, None, None, :], (n, 16, 16, 3)).copy()
  path = str(tmp_path / 'flat.npz')
  np.savez(path, images=images, labels=np.arange(n) // 4)
  src = sources.load_split(path, 'train', '', 16)
  cfg = common.data_config('semantic')
  cfg.image_size = 16
  cfg.augment.preset = 'weak_rrc'  # Crops and flips only: colours survive.
  cfg.augment.local_crops = 4
  cfg.augment.local_crop_size = 6
  ps = pairs_lib.build_pair_set(cfg, src)
  batches = pipeline.train_batches(src, ps, cfg, 8, 0)
  b = batches[0]
  assert b['local'].shape == (8, 4, 6, 6, 3) and b['local'].dtype == np.uint8
  # Which image each view shows, by its colour.
  def which(view):
    return int(np.argmin(np.abs(colours.astype(int) -
                                view.reshape(-1, 3).mean(0)).sum(1)))
  for row in range(8):
    anchor, partner = which(b['view1'][row]), which(b['view2'][row])
    assert anchor == int(b['index'][row]) and anchor != partner
    assert [which(v) for v in b['local'][row]] == [anchor, partner] * 2
  # Deterministic, like the global views.
  again = pipeline.train_batches(src, ps, cfg, 8, 0)[0]
  np.testing.assert_array_equal(again['local'], b['local'])
  # Without multi-crop there is no 'local' entry.
  cfg.augment.local_crops = 0
  assert 'local' not in pipeline.train_batches(src, ps, cfg, 8, 0)[0]
