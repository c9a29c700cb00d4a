r"""python launch/compare_temporal.py --workdir=runs/compare_temporal --out=docs/compare_temporal

Temporal pairs vs plain MoCo v2 on the same video frames (CPU minutes).

Shots come from the frame-difference detector (no labels). Every shot is cut
in time into a pretraining part and a held-out part, so that no evaluation
frame ever reaches pretraining, as an image or as a temporal partner:

* pretraining frames: the first half of the shot;
* a gap of ``--gap`` frames (default 4 = the largest temporal gap, so no
  pretraining frame's partner lies in the held-out part) that nobody uses;
* held-out frames: the rest, whose first half is the kNN/probe training set
  and second half the test set. A shot too short to keep 4 held-out frames
  after the gap is held out whole (none of its frames is pretrained on).

Pretraining: the pretraining frames of ``--video`` (default
``video_bikes.npz``: 250 frames, 6 shots) with MoCo v2 and

* ``augmented``: two augmentations of one frame (plain MoCo v2);
* ``temporal``: frame i and a frame 1–4 away in its shot, each augmented;
* ``temporal-tracker``: the same, as crops of one region tracked between the
  two frames (normalised cross-correlation).

Evaluation, on the pooled backbone features of the held-out frames only:

* viewpoint invariance: the Top-K Representation Invariance Score
  (:func:`ssl_pairs.evals.invariance.topk_invariance_score`, K = 10/25) with
  windows of 5 consecutive held-out frames of one shot as the transformation
  sets and the shot as the class (real camera and object motion);
* shot kNN across time: the first half of every shot's held-out frames is
  the kNN/probe training set and the second half the test set, the class
  being the shot — a frame must be matched to its shot seen earlier from
  other viewpoints.

What pretraining does see: earlier frames of the same shots, and the shot
boundaries (temporal pairs never cross a cut). So the shot kNN measures
generalisation to later, unseen frames of the scenes pretrained on, not to
new scenes. "random init": the shot kNN of the runs' shared step-0 encoder, the RIS of a
fresh seeded initialisation of the same network. Writes ``<out>/results.md``
and ``results.csv``.
"""

import csv
import json
import os
import time

from absl import flags

import numpy as np
from PIL import Image

from configs import common
from launch import cpu_scale
from ssl_pairs import train
from ssl_pairs.data import sources, video
from ssl_pairs.mining import priors
from ssl_pairs.evals.invariance import topk_invariance_score, viewpoint_sets
from ssl_pairs.metrics import format_seconds
# pylint: enable=g-import-not-at-top,wrong-import-position

ARMS = ('augmented', 'temporal', 'temporal-tracker')

_WORKDIR = flags.DEFINE_string('workdir', 'runs/compare_temporal', 'Runs.')
_OUT = flags.DEFINE_string(
    'out', '', 'Tables (default: docs/compare_temporal for the default '
    '--workdir, else <workdir>/report).')
_VIDEO = flags.DEFINE_string('video', 'video_bikes.npz', 'Video npz.')
_EPOCHS = flags.DEFINE_float('epochs', 40.0, 'Epochs over the frames.')
_BATCH = flags.DEFINE_integer('batch_size', 32, 'Pairs per step.')
_SIZE = flags.DEFINE_integer('image_size', 32, 'Resolution.')
_ARCH = flags.DEFINE_string('arch', 'resnet18', 'Backbone.')
_WIDTH = flags.DEFINE_float('width', 0.25, 'Width multiplier.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed.')
_GAP = flags.DEFINE_integer(
    'gap', 4, 'Frames left unused between a shot\'s pretraining and '
    'held-out parts (at least the largest temporal gap).')
_COLLECT_ONLY = flags.DEFINE_bool('collect_only', False,
                                  'Only rebuild the tables.')


def split_shots(shots, gap: int):
  """(pretraining frames, held-out kNN-train frames, held-out test frames).

  Per shot: the first half pretrains; ``gap`` frames are skipped; the rest
  is held out, its first half for kNN/probe training, its second for
  testing. A shot with fewer than 4 frames left after the gap is held out
  whole.
  """
  pre, train_part, test_part = [], [], []
  for s in np.unique(shots):
    frames = np.nonzero(shots == s)[0]
    half = len(frames) // 2
    held = frames[half + gap:]
    if len(held) < 4:
      half, held = 0, frames
    pre.append(frames[:half])
    k = (len(held) + 1) // 2
    train_part.append(held[:k])
    test_part.append(held[k:])
  return tuple(np.concatenate(p).astype(np.int64)
               for p in (pre, train_part, test_part))


def write_splits(source, shots, root, gap):
  """The pretraining npz (labels = shot, so temporal pairs stay inside a
  shot) and the held-out image folder root/{train,test}/shot<s>/."""
  pre, train_part, test_part = split_shots(shots, gap)
  for split, part in (('train', train_part), ('test', test_part)):
    for i in part:
      folder = os.path.join(root, split, f'shot{shots[i]}')
      os.makedirs(folder, exist_ok=True)
      Image.fromarray(source[int(i)]).save(
          os.path.join(folder, f'{int(i):05d}.png'))
  path = os.path.join(root, 'pretraining_frames.npz')
  np.savez(path, images=source.gather(pre), labels=shots[pre],
           label_names=np.asarray([f'shot{s}' for s in
                                   range(int(shots.max()) + 1)]),
           frame_index=pre)
  return path, (pre, train_part, test_part)


def invariance(spec, source, shots, held_out, config):
  """RIS@10/25 of an encoder ('random_init' or 'checkpoint:<dir>') over
  windows of 5 consecutive held-out frames of each shot."""
  held = source.subset(held_out)
  x = priors.compute_prior(spec, held, config.data.gps, config.model,
                           config.seed)
  set_ids, class_ids = viewpoint_sets(shots[held_out], window=5)
  return topk_invariance_score(x, set_ids, class_ids, ks=(10, 25))


def run_config(arm, eval_dir, pretraining_npz):
  c = common.mined_config('mocov2', 'temporal', 'mocov2_temporal', 'runlocal')
  c.name = f'compare_temporal-{arm}'
  c.data.dataset = pretraining_npz
  if arm == 'augmented':
    c.data.pairs = 'augmented'
    c.data.pair_transform = 'none'
  c.data.temporal.tracker = arm == 'temporal-tracker'
  cpu_scale.apply(c, arch=_ARCH.value, width=_WIDTH.value,
                  image_size=_SIZE.value, batch_size=_BATCH.value,
                  epochs=_EPOCHS.value, seed=_SEED.value,
                  eval_datasets=eval_dir, eval_train_limit=0,
                  eval_every=_EPOCHS.value)
  c.optim.warmup_epochs = min(1.0, _EPOCHS.value / 4)
  c.method.queue_size = 8 * _BATCH.value  # 4 steps of keys: 250 frames.
  # The settings these results were measured with, before MoCo v2's defaults
  # became the paper's EMA 0.999 and shuffled BN (against a drift that needs
  # a long queue; this one holds 4 steps of keys).
  c.method.ema_base, c.method.shuffle_bn_groups = 0.99, 1
  c.eval.knn_k = '5,20'
  c.checkpoint_every_steps = 100
  return c


def main(argv):
  del argv
  workdir = os.path.abspath(_WORKDIR.value)
  t0 = time.time()
  eval_dir = os.path.join(workdir, f'shots_held_out_gap{_GAP.value}')
  pretraining_npz = os.path.join(eval_dir, 'pretraining_frames.npz')
  if not _COLLECT_ONLY.value:
    src = sources.load_split(_VIDEO.value, 'train',
                             sources.resolve_data_dir(''), None)
    shots = video.shot_ids(src)
    if not os.path.exists(pretraining_npz):
      write_splits(src, shots, eval_dir, _GAP.value)
    for i, arm in enumerate(ARMS):
      if os.path.exists(os.path.join(workdir, arm, 'eval.json')):
        print(f'[{i + 1}/{len(ARMS)}] {arm}: done, skipped.')
        continue
      print(f'[{i + 1}/{len(ARMS)}] === MoCo v2, {arm} pairs ===', flush=True)
      train.run(run_config(arm, eval_dir, pretraining_npz),
                os.path.join(workdir, arm))
  command = cpu_scale.record_command(workdir, not _COLLECT_ONLY.value)
  key = os.path.basename(eval_dir)
  src = sources.load_split(_VIDEO.value, 'train',
                           sources.resolve_data_dir(''), _SIZE.value)
  shots = video.shot_ids(src)
  pre, train_part, test_part = split_shots(shots, _GAP.value)
  held_out = np.sort(np.concatenate([train_part, test_part]))
  config = run_config('augmented', eval_dir, pretraining_npz)
  rows = []
  for arm in ARMS:
    path = os.path.join(workdir, arm, 'eval_curve.jsonl')
    if not os.path.exists(path):
      continue
    with open(path) as f:
      points = [json.loads(l) for l in f if l.strip()]
    with open(os.path.join(workdir, arm, 'eval.json')) as f:
      seconds = json.load(f)['train_seconds']
    if not rows:
      rows.append(('random init', points[0]['results'][key], 0.0,
                   invariance('random_init', src, shots, held_out, config)))
    rows.append((f'MoCo v2, {arm}', points[-1]['results'][key], seconds,
                 invariance(f'checkpoint:{os.path.join(workdir, arm)}', src,
                            shots, held_out, config)))
  out = cpu_scale.out_dir(_OUT.value, _WORKDIR, 'docs/compare_temporal')
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, 'results.csv'), 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['encoder', 'ris@10', 'ris@25', 'knn@5', 'knn@20', 'probe',
                'train_seconds'])
    for name, r, s, ris in rows:
      w.writerow([name, ris[10], ris[25], r['knn@5'], r['knn@20'],
                  r['probe'], round(s, 1)])
  lines = [
      '# Temporal pairs vs plain MoCo v2 on the same frames', '',
      f'Command: `python launch/compare_temporal.py {command}`', '',
      f'Frames: {len(pre)} of the {len(shots)} frames of {_VIDEO.value} '
      f'pretrain (the first half of each of its {len(np.unique(shots))} '
      f'shots); {_GAP.value} frames after them are unused; the '
      f'{len(held_out)} frames after that are held out and are all that '
      f'is evaluated ({len(train_part)} kNN/probe training, '
      f'{len(test_part)} test). No evaluated frame, nor any temporal partner '
      'of a pretraining frame, is ever pretrained on; pretraining does see '
      'earlier frames of the same shots and where the cuts are.', '',
      f'Pretraining: {_ARCH.value} width '
      f'{_WIDTH.value:g}, {_SIZE.value} px, batch {_BATCH.value}, '
      f'{_EPOCHS.value:g} epochs, queue {8 * _BATCH.value}, EMA 0.99, global '
      f'BN, seed '
      f'{_SEED.value}. Viewpoint invariance: Top-K RIS (K = 10/25) over '
      'windows of 5 consecutive held-out frames of a shot, class = shot. '
      'Shot kNN across time: shot identity of the second half of every '
      'shot\'s held-out frames from its first half (kNN k=5/20, probe), '
      'top-1 %.', '',
      '| encoder | RIS@10 | RIS@25 | shot kNN@5 | shot kNN@20 | shot probe | '
      'train time |', '|---|---|---|---|---|---|---|']
  for name, r, s, ris in rows:
    lines.append(f'| {name} | {ris[10]:.2f} | {ris[25]:.2f} | '
                 f'{r["knn@5"]:.1f} | {r["knn@20"]:.1f} | '
                 f'{r["probe"]:.1f} | {format_seconds(s) if s else "–"} |')
  with open(os.path.join(out, 'results.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))
  print(f'Done in {format_seconds(time.time() - t0)}.')


if __name__ == '__main__':
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
