"""Mined pair sources without labels: SPPS positive sets and temporal pairs."""

import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import REPO, load_config, read_checkpoint_state
from ssl_pairs.mining import tables as tables_lib
from ssl_pairs import train
from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data import pipeline, sources, video
from ssl_pairs.errors import UserError


def _spps_config(smoke_config, method='simclr'):
  config = load_config(f'{method}_spps')
  config.data.dataset = smoke_config.data.dataset
  config.eval.datasets = smoke_config.eval.datasets
  config.eval.train_limit = config.eval.test_limit = 0
  config.eval.probe = False
  config.data.spps.threshold = 0.995
  config.data.spps.max_positives = 3
  return config


def test_spps_sets_follow_the_threshold(smoke_config):
  config = _spps_config(smoke_config)
  src = sources.load_split(config.data.dataset, 'train', '', 16)
  pair_set = tables_lib.build_pair_set(config.data, src)
  assert pair_set.positives.shape == (len(src), 3)
  # Members are neighbours (never the image itself), by decreasing cosine.
  assert not np.any(pair_set.positives == np.arange(len(src))[:, None])
  x = src.images.reshape(len(src), -1).astype(np.float32) / 255
  x /= np.linalg.norm(x, axis=1, keepdims=True)
  sims = np.einsum('nd,npd->np', x, x[pair_set.positives])
  np.testing.assert_array_equal(pair_set.positive_mask, sims >= 0.995 - 1e-6)
  sizes = pair_set.set_sizes()
  assert 0 < sizes.mean() < 3  # Some sets are full, some smaller.
  # Precision counts only real members.
  same = src.labels[pair_set.positives] == src.labels[:, None]
  assert pair_set.precision(src.labels) == pytest.approx(
      same[pair_set.positive_mask].mean())
  config.data.spps.threshold = 1.5  # Nothing that similar: all sets empty.
  assert not tables_lib.build_pair_set(config.data, src).positive_mask.any()


def test_spps_batches_carry_the_positive_set(smoke_config):
  config = _spps_config(smoke_config)
  src = sources.load_split(config.data.dataset, 'train', '', 16)
  pair_set = tables_lib.build_pair_set(config.data, src)
  batch = pipeline.train_batches(src, pair_set, config.data, 8, seed=0)[0]
  assert batch['positives'].shape == (8, 3, 16, 16, 3)
  assert batch['positives'].dtype == np.uint8
  np.testing.assert_array_equal(batch['positive_mask'],
                                pair_set.positive_mask[batch['index']])
  again = pipeline.train_batches(src, pair_set, config.data, 8, seed=0)[0]
  np.testing.assert_array_equal(batch['positives'], again['positives'])


def _loss(batch, config):
  from ssl_pairs.methods import RunInfo, get_method
  from ssl_pairs.images import normalize_images
  config.batch_size = batch['view1'].shape[0]
  method = get_method(config, RunInfo(total_steps=10, steps_per_epoch=5))
  variables = method.init_variables(jax.random.key(0), normalize_images(
      batch['view1']))
  state = method.init_method_state(jax.random.key(1), variables)
  inputs = {k: normalize_images(v) if k in ('view1', 'view2', 'positives')
            else v for k, v in batch.items()}
  loss, _ = method.loss(variables['params'], variables['batch_stats'], state,
                        inputs, jax.random.key(2), 0)
  return float(loss)


@pytest.mark.parametrize('method', ['simclr', 'mocov2'])
def test_empty_positive_sets_fall_back_to_the_plain_pair_loss(smoke_config,
                                                              method):
  """Masked-out positives are neither positives nor negatives: the loss is
  the plain pair's. The slots hold copies of view1 and view2, so BatchNorm
  sees the same batch mean and variance as without them (exact check).
  MoCo's BN is global here: shuffled BN puts the extra slots into the keys'
  groups, which changes every key's statistics by design."""
  config = _spps_config(smoke_config, method)
  if method == 'mocov2':
    config.method.queue_size = 64
    config.method.shuffle_bn_groups = 1
  rng = np.random.default_rng(0)
  batch = {'view1': rng.integers(0, 256, (4, 16, 16, 3), np.uint8),
           'view2': rng.integers(0, 256, (4, 16, 16, 3), np.uint8),
           'label': np.zeros(4, np.int32), 'index': np.arange(4, dtype=np.int32)}
  plain = _loss(batch, config)
  masked = dict(batch, positives=np.stack([batch['view1'], batch['view2']], 1),
                positive_mask=np.zeros((4, 2), bool))
  assert _loss(masked, config) == pytest.approx(plain, rel=1e-4)
  # The same views as real positives are easy positives: a lower loss.
  with_set = dict(masked, positive_mask=np.ones((4, 2), bool))
  assert _loss(with_set, config) < plain - 0.1


def test_spps_is_refused_for_non_contrastive_methods(smoke_config, tmp_path):
  config = _spps_config(smoke_config)
  byol = load_config('byol_gps')
  config.method = byol.method
  config.optim = byol.optim
  with pytest.raises(UserError, match="spps' adds semantic positives"):
    train.run(config, str(tmp_path / 'x'))


def _permuted_labels_npz(path, tmp_path):
  with np.load(path) as z:
    data = dict(z)
  data['labels'] = np.random.default_rng(0).permutation(data['labels'])
  out = str(tmp_path / 'permuted.npz')
  np.savez(out, **data)
  return out


@pytest.mark.parametrize('name', ['simclr_gps', 'mocov2_spps'])
def test_labels_never_reach_training_on_mined_pairs(smoke_config, tmp_path,
                                                    name):
  """Same images with shuffled labels ⇒ bitwise the same trained parameters.

  (Temporal pairs are not in this list: in a video source ``labels`` name the
  clip, which is meant to delimit the pairs.)"""
  params = []
  for i, dataset in enumerate([smoke_config.data.dataset, _permuted_labels_npz(
      smoke_config.data.dataset, tmp_path)]):
    config = load_config(name)
    config.data.dataset = dataset
    config.eval.datasets = smoke_config.eval.datasets
    config.eval.train_limit = config.eval.test_limit = 0
    config.eval.probe = False
    if 'queue_size' in config.method:
      config.method.queue_size = 64
    workdir = str(tmp_path / f'run{i}')
    train.run(config, workdir)
    params.append(read_checkpoint_state(workdir)[1]['params'])
  for a, b in zip(jax.tree.leaves(params[0]), jax.tree.leaves(params[1])):
    np.testing.assert_array_equal(a, b)


def test_spps_trains_end_to_end_with_simclr(smoke_config, tmp_path, capsys):
  config = _spps_config(smoke_config)
  report = train.run(config, str(tmp_path / 'spps'))
  assert np.isfinite(report['results']['synthetic.npz']['knn@20'])
  assert 'Semantic positive sets' in capsys.readouterr().out
  # The logged statistics are those of the positive sets the run used.
  src = sources.load_split(config.data.dataset, 'train', '', 16)
  pair_set = tables_lib.build_pair_set(config.data, src)
  with open(tmp_path / 'spps' / 'pair_stats.json') as f:
    stats = json.load(f)
  assert stats['pair_precision'] == pytest.approx(
      pair_set.precision(src.labels))
  assert stats['mean_set_size'] == pytest.approx(pair_set.set_sizes().mean())
  assert stats['empty_fraction'] == pytest.approx(
      np.mean(pair_set.set_sizes() == 0))


def test_spps_batch_positives_are_the_anchors_set_members(smoke_config):
  """Without view augmentation every real positive slot shows exactly its
  member image of the anchor's positive set, and every empty slot the
  anchor itself (masked out of the loss)."""
  config = _spps_config(smoke_config)
  config.data.augment.preset = 'none'
  src = sources.load_split(config.data.dataset, 'train', '', 16)
  pair_set = tables_lib.build_pair_set(config.data, src)
  assert 0 < pair_set.positive_mask.mean() < 1
  for step in (0, 4):
    b = pipeline.train_batches(src, pair_set, config.data, 8, seed=0)[step]
    for row, anchor in enumerate(b['index']):
      members, mask = pair_set.positive_set(int(anchor))
      for slot, (member, real) in enumerate(zip(members, mask)):
        assert b['positive_mask'][row, slot] == real
        np.testing.assert_array_equal(
            b['positives'][row, slot], src[int(member) if real else anchor])
        if real:
          assert member != anchor


# ----------------------------------------------------------------- temporal


def _moving_patch_video(tmp_path, steps=((0, 0), (2, 3), (-1, 4), (3, -2))):
  """A textured 12-px patch moving over a noise background, then a cut."""
  rng = np.random.default_rng(0)
  background = rng.integers(0, 256, (48, 64, 3)).astype(np.float32) * 0.3
  patch = rng.integers(0, 256, (12, 12, 3)).astype(np.float32)
  frames, positions = [], []
  y, x = 18, 20
  for dy, dx in steps:
    y, x = y + dy, x + dx
    f = background + rng.normal(0, 4, background.shape)
    f[y:y + 12, x:x + 12] = patch
    frames.append(np.clip(f, 0, 255).astype(np.uint8))
    positions.append((y, x))
  other = rng.integers(0, 256, (48, 64, 3)).astype(np.float32)  # New scene.
  cut = [np.clip(other + rng.normal(0, 4, other.shape), 0, 255).astype(
      np.uint8) for _ in range(4)]
  images = np.stack(frames + cut)
  path = str(tmp_path / 'video.npz')
  np.savez(path, images=images, labels=np.zeros(len(images), np.int64),
           label_names=np.asarray(['clip']))
  return path, positions


def test_tracker_follows_a_moving_patch_within_a_pixel(tmp_path):
  path, positions = _moving_patch_video(tmp_path)
  frames = np.load(path)['images']
  y0, x0 = positions[0]
  for t in range(1, len(positions)):
    y, x = video.track_region(frames[0], frames[t], (y0, x0, 12), radius=8)
    assert abs(y - positions[t][0]) <= 1 and abs(x - positions[t][1]) <= 1


def test_temporal_pairs_stay_inside_their_shot(tmp_path, smoke_config):
  path, _ = _moving_patch_video(tmp_path)
  config = load_config('mocov2_temporal')
  src = sources.load_split(path, 'train', '', None)
  pair_set = tables_lib.build_pair_set(config.data, src)
  np.testing.assert_array_equal(pair_set.shots, [0] * 4 + [1] * 4)
  config.data.temporal.shot_starts = '0,2,4'  # Given instead of detected.
  np.testing.assert_array_equal(
      tables_lib.build_pair_set(config.data, src).shots, [0, 0, 1, 1, 2, 2, 2,
                                                         2])
  gaps = []
  for epoch in range(20):
    for item in range(len(pair_set)):
      a, b = pair_set.pair(item, epoch)
      assert pair_set.shots[a] == pair_set.shots[b] and a != b
      gaps.append(abs(b - a))
      assert (a, b) == pair_set.pair(item, epoch)  # Deterministic.
  assert set(gaps) == {1, 2, 3}  # max_gap 4 is capped by 4-frame shots.
  del smoke_config


def test_real_video_shots_are_found_at_the_documented_cuts(real_data_dir):
  src = sources.load_split(os.path.join(real_data_dir, 'video_bikes.npz'),
                           'train', real_data_dir, 32)
  starts = np.nonzero(np.diff(video.shot_ids(src)))[0] + 1
  np.testing.assert_array_equal(starts, [30, 76, 137, 187, 242])
  one_shot = sources.load_split(os.path.join(
      real_data_dir, 'video_carphone_pristine.npz'), 'train', real_data_dir, 32)
  assert video.shot_ids(one_shot).max() == 0


def test_temporal_tracker_pairs_train_mocov2(tmp_path, smoke_config, capsys):
  path, _ = _moving_patch_video(tmp_path)
  config = load_config('mocov2_temporal')
  config.data.dataset = path
  config.data.temporal.tracker = True
  config.data.image_size = 16
  config.method.queue_size = 64
  config.eval.datasets = smoke_config.eval.datasets
  config.eval.train_limit = config.eval.test_limit = 0
  config.eval.probe = False
  report = train.run(config, str(tmp_path / 'temporal'))
  assert np.isfinite(report['results']['synthetic.npz']['knn@20'])
  assert 'Temporal pairs: 2 shot(s)' in capsys.readouterr().out


def test_tracked_regions_in_the_batch_are_where_the_tracker_put_them(
    tmp_path):
  """Views at the region size without augmentation: view 1 is a region of
  the anchor frame, and view 2 is exactly the region of the partner frame
  that track_region finds for it (not, e.g., the same box)."""
  path, _ = _moving_patch_video(tmp_path)
  config = load_config('mocov2_temporal')
  config.data.dataset = path
  config.data.temporal.tracker = True
  config.data.augment.preset = 'none'
  src = sources.load_split(path, 'train', '', None)
  pair_set = tables_lib.build_pair_set(config.data, src)
  side = int(round(pair_set.region_fraction * 48))
  config.data.image_size = side
  batch = pipeline.train_batches(src, pair_set, config.data, 8, seed=0)[0]
  moved = 0
  for row in range(8):
    a, b = int(batch['index'][row]), int(batch['partner'][row])
    assert pair_set.shots[a] == pair_set.shots[b] and a != b
    frame_a, frame_b = src[a], src[b]
    # Where view 1 was cut from (the noise background makes it unique).
    boxes = [(y, x) for y in range(48 - side + 1) for x in range(64 - side + 1)
             if np.array_equal(frame_a[y:y + side, x:x + side],
                               batch['view1'][row])]
    assert len(boxes) == 1
    (top, left), = boxes
    y, x = video.track_region(frame_a, frame_b, (top, left, side),
                              pair_set.search_radius)
    np.testing.assert_array_equal(batch['view2'][row],
                                  frame_b[y:y + side, x:x + side])
    moved += (y, x) != (top, left)
  assert moved > 0  # The tracker really moved some regions.


# ------------------------------------------------------------ GPS refresh


def _gps_config(smoke_config, refresh, total_steps):
  config = load_config('simclr_gps')
  config.data.dataset = smoke_config.data.dataset  # 80 images, batch 8.
  config.eval.datasets = smoke_config.eval.datasets
  config.eval.train_limit = config.eval.test_limit = 0
  config.eval.probe = False
  config.data.gps.refresh_epochs = refresh
  config.total_steps = total_steps
  config.checkpoint_every_steps = 100  # Only the last step's.
  return config


def test_gps_refresh_changes_the_table_only_when_on_and_resumes_exactly(
    smoke_config, tmp_path, capsys):
  """25 steps = 2.5 epochs of 10 steps: refresh every epoch builds tables for
  generations 1 and 2 from the model; a run SIGKILLed at step 15 (after the
  first refresh; the checkpoint is at 12) and resumed ends bitwise equal."""
  off = str(tmp_path / 'off')
  train.run(_gps_config(smoke_config, 0, 12), off)
  assert not [f for f in os.listdir(off) if f.startswith('gps_neighbours')]
  assert 'Refreshed' not in capsys.readouterr().out

  on = str(tmp_path / 'on')
  train.run(_gps_config(smoke_config, 1, 25), on)
  assert 'Refreshed the GPS neighbours' in capsys.readouterr().out
  src = sources.load_split(smoke_config.data.dataset, 'train', '', 16)
  prior = tables_lib.build_pair_set(_gps_config(smoke_config, 1, 25).data,
                                   src).neighbours
  tables = [np.load(os.path.join(on, f'gps_neighbours_g{g}.npy'))
            for g in (1, 2)]
  assert not os.path.exists(os.path.join(on, 'gps_neighbours_g3.npy'))
  for table in tables:
    assert table.shape == prior.shape
    assert not np.array_equal(np.sort(table, 1), np.sort(prior, 1))
  assert not np.array_equal(tables[0], tables[1])

  killed = str(tmp_path / 'killed')
  cmd = [sys.executable, os.path.join(REPO, 'main.py'),
         '--config=configs/simclr_gps.py:smoke', f'--workdir={killed}',
         f'--config.data.dataset={smoke_config.data.dataset}',
         f'--config.eval.datasets={smoke_config.eval.datasets}',
         '--config.eval.train_limit=0', '--config.eval.test_limit=0',
         '--config.eval.probe=False', '--config.data.gps.refresh_epochs=1',
         '--config.total_steps=25', '--config.checkpoint_every_steps=12']
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                        env=dict(os.environ, **{train.KILL_AT_STEP_ENV: '15'}))
  assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
  subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
  for g in (1, 2):
    np.testing.assert_array_equal(
        np.load(os.path.join(killed, f'gps_neighbours_g{g}.npy')),
        tables[g - 1])
  a = read_checkpoint_state(on)[1]['params']
  b = read_checkpoint_state(killed)[1]['params']
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


def test_autoencoder_prior_learns_and_finds_same_class_neighbours():
  """Reconstruction error falls; its neighbours share labels far above chance
  (1/8 on the synthetic classes), though labels never reach it."""
  from conftest import synthetic_images
  from ssl_pairs.mining import neighbours
  from ssl_pairs.mining import priors
  images, labels = synthetic_images(size=32)
  z, losses = priors.train_autoencoder(images, epochs=12, latent=16, seed=0,
                                       batch_size=16, progress=False)
  assert z.shape == (80, 16) and np.all(np.isfinite(z))
  assert losses[-1] < 0.7 * losses[0]
  table, _ = neighbours.nearest_neighbours(z, 4)
  assert np.mean(labels[table] == labels[:, None]) > 0.5
  again, _ = priors.train_autoencoder(images, epochs=12, latent=16, seed=0,
                                      batch_size=16, progress=False)
  np.testing.assert_array_equal(z, again)  # Seeded.


def test_byol_trains_on_gps_pairs_with_weak_augmentation(smoke_config,
                                                         tmp_path):
  """GPS pairs feed any method: BYOL with flip-only views (GPS-SSL's case)."""
  config = load_config('byol_gps', 'smoke,aug=weak')
  assert config.data.augment.preset == 'weak'
  config.data.dataset = smoke_config.data.dataset
  config.eval.datasets = smoke_config.eval.datasets
  config.eval.train_limit = config.eval.test_limit = 0
  config.eval.probe = False
  report = train.run(config, str(tmp_path / 'byol_gps'))
  assert np.isfinite(report['results']['synthetic.npz']['knn@20'])
  # The pairs BYOL trained on are neighbours from the run's table, and the
  # logged precision is that table's.
  src = sources.load_split(config.data.dataset, 'train', '',
                           config.data.image_size)
  pair_set = tables_lib.build_pair_set(config.data, src, config.model,
                                      str(tmp_path / 'byol_gps'))
  with open(tmp_path / 'byol_gps' / 'pair_stats.json') as f:
    assert json.load(f)['pair_precision'] == pytest.approx(
        pair_set.precision(src.labels))
  batch = pipeline.train_batches(src, pair_set, config.data, 8, seed=0)[0]
  for anchor, partner in zip(batch['index'], batch['partner']):
    assert partner in pair_set.neighbours[anchor] and partner != anchor
