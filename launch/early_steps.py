r"""python launch/early_steps.py --run=runs/reproduce/cpu/byol_augmented_p50 \
    --workdir=runs/diag/pa_initdefault --steps=80 --set=model.init=default

The first steps of a run's config with one or more settings changed: a cheap
way to ask which setting makes a method collapse. It trains the saved
``<run>/config.json`` (with every ``--set key=value`` applied) in ``--workdir``
and stops after exactly ``--steps`` steps — the learning-rate, warm-up and EMA
schedules stay those of the full run — then prints the collapse monitor
(loss, effective rank and std of the batch embedding, and any metric the method
adds, such as VICReg's terms) every ``--every`` steps.
The stop is a normal preemption: a checkpoint is saved in ``--workdir``.
"""

import json
import os

from absl import flags

import ml_collections

from ssl_pairs import train
from ssl_pairs.errors import UserError
from ssl_pairs.metrics import read_jsonl
# pylint: enable=g-import-not-at-top,wrong-import-position

_RUN = flags.DEFINE_string('run', None, 'Run folder whose config.json to use.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where to train (new).')
_STEPS = flags.DEFINE_integer('steps', 80, 'Stop after this many steps.')
_SET = flags.DEFINE_multi_string(
    'set', [], 'key=value override of the config (dotted key), repeatable.')
_EVERY = flags.DEFINE_integer('every', 10, 'Print every this many steps.')


_SHOWN = {'step', 'loss', 'embed_rank', 'embed_std'}
_NOT_SHOWN = {'grad_norm', 'lr', 'pairs_per_sec'}


def override(c, assignment: str) -> None:
  """Applies one ``key=value`` to the ConfigDict, typed like the old value."""
  if '=' not in assignment:
    raise UserError(f'--set={assignment!r} must be key=value, e.g. '
                    '--set=model.init=default.')
  key, value = assignment.split('=', 1)
  *path, last = key.split('.')
  node = c
  for part in path:
    if part not in node:
      raise UserError(f'--set names {key!r}, but the config has no {part!r}.')
    node = node[part]
  if last not in node:
    raise UserError(f'--set names {key!r}, but the config has no {last!r}.')
  old = node[last]
  if isinstance(old, bool):
    node[last] = value.lower() in ('1', 'true', 'yes')
  elif isinstance(old, (int, float)):
    node[last] = type(old)(value)
  else:
    node[last] = value


def main(argv):
  del argv
  path = os.path.join(_RUN.value, 'config.json')
  if not os.path.isfile(path):
    raise UserError(f'{path} does not exist; --run must be a run folder '
                    '(one that holds config.json).')
  if os.path.exists(os.path.join(_WORKDIR.value, 'metrics.jsonl')):
    raise UserError(f'{_WORKDIR.value} already holds a run; pick a new '
                    '--workdir so this experiment cannot mix with it.')
  with open(path) as f:
    c = ml_collections.ConfigDict(json.load(f))
  for assignment in _SET.value:
    override(c, assignment)
  c.name = f'early_steps-{os.path.basename(os.path.normpath(_WORKDIR.value))}'
  metrics_path = os.path.join(_WORKDIR.value, 'metrics.jsonl')
  try:
    train.run(c, _WORKDIR.value, stop_after_step=_STEPS.value)
  except train.Preempted:
    pass
  rows = read_jsonl(metrics_path)
  print(f'\n{_RUN.value} with {" ".join(_SET.value) or "no change"}:')
  # Any metric a method adds (e.g. VICReg's terms) gets a column too.
  extra = sorted({k for r in rows for k in r} - _SHOWN - _NOT_SHOWN)
  print('| step | loss | effective rank | embed std |' +
        ''.join(f' {k} |' for k in extra))
  print('|---|---|---|---|' + '---|' * len(extra))
  for r in rows:
    if r['step'] % _EVERY.value == 0 or r['step'] == 1:
      print(f'| {r["step"]} | {r["loss"]:.3f} | '
            f'{r.get("embed_rank", float("nan")):.1f} | '
            f'{r.get("embed_std", float("nan")):.4f} |' +
            ''.join(f' {r.get(k, float("nan")):.4g} |' for k in extra))


if __name__ == '__main__':
  flags.mark_flags_as_required(['run', 'workdir'])
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
