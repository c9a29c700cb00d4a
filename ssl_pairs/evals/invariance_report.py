r"""python -m ssl_pairs.evals.invariance_report --restore=runs/simclr_sp

Top-K Representation Invariance Scores (K = 10, 25) of a checkpoint's encoder
for every transformation-set builder: occlusion, background, illumination
colour and direction, instance (Tiny-ImageNet train, with its boxes),
viewpoint (windows of consecutive frames of the videos' shots) and instance +
viewpoint (frames spread over each whole clip, across its cuts; needs two or
more clips, the classes of that score). Sets are
built at the checkpoint's resolution; features are the pooled backbone output
extracted under jit. Writes ``<restore>/invariance.json`` and prints a table.
"""

import json
import os

from absl import flags
import numpy as np

from ssl_pairs.data import sources, video
from ssl_pairs.evals import transform_sets
from ssl_pairs.evals.invariance import (instance_viewpoint_sets,
                                        topk_invariance_score, viewpoint_sets)

FLAGS = flags.FLAGS
# Every score report() can return (the video ones need --videos).
SET_NAMES = (*transform_sets.BUILDERS, 'viewpoint', 'instance_viewpoint')


def _define_flags():
  """Only when run as a program: importing this module defines no flags, so
  it cannot clash with another program's flags of the same names."""
  flags.DEFINE_string('restore', None, 'Workdir of the checkpoint.')
  flags.DEFINE_string('dataset', 'tiny_imagenet',
                      'Images (with boxes) for the image sets.')
  flags.DEFINE_integer('n', 200, 'Objects (sets) per image builder.')
  flags.DEFINE_list('videos', ['video_bikes.npz',
                               'video_carphone_pristine.npz'],
                    'Video npz files for viewpoint sets ([] to skip).')
  flags.DEFINE_integer('seed', 0, 'Seed of the set builders.')
  flags.mark_flag_as_required('restore')


def encoder_features(restore: str):
  """(fn(images uint8 [M, S, S, 3]) → features [M, D], resolution)."""
  from ssl_pairs.checkpoint import restore_encoder  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from ssl_pairs.evals.features import encoder_features_fn  # pylint: disable=g-import-not-at-top
  from ssl_pairs.models import get_backbone  # pylint: disable=g-import-not-at-top
  saved, _, variables, _ = restore_encoder(restore)
  extract = encoder_features_fn(
      get_backbone(ml_collections.ConfigDict(saved['model']))[0])
  return (lambda images: extract(variables, images)), saved['data'][
      'image_size']


def report(restore: str, dataset: str, n: int, videos, seed: int = 0):
  """{invariance: {10: score, 25: score, 'sets': count}}."""
  features_of, size = encoder_features(restore)
  data_dir = sources.resolve_data_dir('')
  source = sources.load_split(dataset, 'train', data_dir, size)
  results = {}
  for name, builder in transform_sets.BUILDERS.items():
    if name in ('occlusion', 'background') and source.boxes is None:
      continue
    if name == 'instance':
      images, set_ids, class_ids = builder(source, seed=seed)
    else:
      images, set_ids, class_ids = builder(source, n=n, seed=seed)
    scores = topk_invariance_score(features_of(images), set_ids, class_ids)
    results[name] = {**scores, 'sets': int(len(np.unique(set_ids)))}
  if videos:
    frames, shots, clips, offset = [], [], [], 0
    for i, path in enumerate(videos):
      clip = sources.load_split(path, 'train', data_dir, size)
      ids = video.shot_ids(clip)
      frames.append(clip.gather(np.arange(len(clip))))
      shots.append(ids + offset)
      clips.append(np.full(len(clip), i))
      offset += ids.max() + 1
    features = features_of(np.concatenate(frames))
    for name, (set_ids, class_ids) in (
        ('viewpoint', viewpoint_sets(np.concatenate(shots), window=5)),
        ('instance_viewpoint',
         instance_viewpoint_sets(np.concatenate(clips), per_set=5))):
      if len(np.unique(class_ids)) < 2:  # p = 0: every neuron always fires.
        continue
      scores = topk_invariance_score(features, set_ids, class_ids)
      results[name] = {**scores, 'sets': int(len(np.unique(set_ids)))}
  return results


def markdown(results) -> str:
  lines = ['| invariance | RIS@10 | RIS@25 | sets |', '|---|---|---|---|']
  for name, r in results.items():
    lines.append(f'| {name} | {r[10]:.2f} | {r[25]:.2f} | {r["sets"]} |')
  return '\n'.join(lines)


def main(argv):
  del argv
  results = report(FLAGS.restore, FLAGS.dataset, FLAGS.n, FLAGS.videos,
                   FLAGS.seed)
  with open(os.path.join(FLAGS.restore, 'invariance.json'), 'w') as f:
    json.dump({k: {str(kk): vv for kk, vv in v.items()}
               for k, v in results.items()}, f, indent=1)
  print(markdown(results))


if __name__ == '__main__':
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  _define_flags()
  cli.run(main, clear=False)
