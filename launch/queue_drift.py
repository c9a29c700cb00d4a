r"""python launch/queue_drift.py --run=runs/compare_methods/mocov2_sp [--step=200]

How far a MoCo run's embedding has moved during the life of its queue: the
mean cosine between the newest step's keys in a checkpoint's queue and the keys
enqueued 0, 1, 2, 4, … steps before them (the oldest block last). Keys of one
step that agree with each other but not with older ones mean the embedding
drifts faster than the queue turns over, so old keys are easy negatives (see
BENCHMARKS.md, MoCo v2 at CPU scale). Runs log the same comparison for their
newest and oldest blocks as ``queue_cos_newest``/``queue_cos_oldest``.
"""

import json
import os

from absl import flags

import numpy as np
import orbax.checkpoint as ocp

from ssl_pairs.checkpoint import find_checkpoint_dir
from ssl_pairs.errors import UserError
# pylint: enable=g-import-not-at-top,wrong-import-position

_RUN = flags.DEFINE_string('run', None, 'MoCo run folder (or its checkpoints/).')
_STEP = flags.DEFINE_integer('step', -1, 'Checkpoint step (-1: the latest).')


def drift_table(queue: np.ndarray, ptr: int, keys_per_step: int):
  """[(age in steps, mean cosine of the newest keys with that block)]."""
  blocks = queue.shape[0] // keys_per_step

  def block(age):  # age 0 = the newest block, written just before ptr.
    start = (ptr - keys_per_step * (age + 1)) % queue.shape[0]
    return queue[start:start + keys_per_step]

  ages = sorted({a for a in (0, 1, 2, 4, 8, 16, 32, 64, 128, 256)
                 if a < blocks} | {blocks - 1})
  newest = block(0)
  return [(a, float(np.mean(newest @ block(a).T))) for a in ages]


def main(argv):
  del argv
  directory = find_checkpoint_dir(_RUN.value)
  steps = sorted(int(d) for d in os.listdir(directory) if d.isdigit())
  step = steps[-1] if _STEP.value < 0 else _STEP.value
  if step not in steps:
    raise UserError(f'Checkpoint step {step} is not in {directory} (steps: '
                    f'{steps}).')
  with open(os.path.join(os.path.dirname(directory), 'config.json')) as f:
    config = json.load(f)
  method = config['method']
  if 'queue_size' not in method:
    raise UserError(f'{_RUN.value} is a {method["name"]} run, which has no '
                    'queue; pass a MoCo v2 run.')
  state = ocp.StandardCheckpointer().restore(
      os.path.join(directory, str(step), 'state'))
  queue = np.asarray(state['method_state']['queue'], np.float32)
  ptr = int(state['method_state']['queue_ptr'])
  keys = config['batch_size'] * (2 if method['symmetric'] else 1)
  print(f'{_RUN.value}, step {step}: queue of {queue.shape[0]} keys, '
        f'{keys} per step\n')
  print('| keys enqueued … steps before the newest | mean cosine with the '
        'newest |\n|---|---|')
  for age, cos in drift_table(queue, ptr, keys):
    print(f'| {age} | {cos:.3f} |')


if __name__ == '__main__':
  flags.mark_flag_as_required('run')
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
