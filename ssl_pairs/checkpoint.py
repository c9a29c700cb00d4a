"""Orbax checkpoints: train state + data-iterator state + config, and resume.

Layout: ``workdir/checkpoints/<step>/{state,data,config}``. ``state`` is the
whole TrainState; ``data`` is a JSON dict with the grain iterator state (the
data position) and bookkeeping (wall-clock training seconds so far); ``config``
is the run's config as JSON, used to refuse resuming a workdir with a
different config and to rebuild the encoder for evaluation.

Saves are asynchronous (Orbax writes in the background while training goes
on) and atomic (a step directory appears only when complete), so a kill during
a save leaves the previous checkpoint intact.
"""

import contextlib
import os
import shutil
from typing import Any, Dict, Optional, Tuple

import jax
import orbax.checkpoint as ocp

import ssl_pairs
from ssl_pairs.errors import UserError
from ssl_pairs.metrics import say

ITEMS = ('state', 'data', 'config')
# Bumped whenever the layout of the saved state changes incompatibly.
FORMAT_VERSION = 1
# Keys that may differ between the checkpointed config and the resuming one:
# they change how long the run goes or what is logged/evaluated, not what the
# finished steps computed. Prefixes end with '.'.
RESUME_SAFE_KEYS = ('epochs', 'total_steps', 'log_every_steps',
                    'checkpoint_every_steps', 'keep_checkpoints', 'progress',
                    'restore', 'eval.', 'data.data_dir', 'data.num_workers',
                    'data.prefetch')
# Settings added to ssl_pairs after checkpoints were written, with the value
# the code used before they existed: a checkpoint without one resumes safely
# only if the new config keeps that value.
ADDED_KEYS = {'optim.bias_lr_factor': 1.0, 'method.shuffle_bn_groups': 1,
              'method.use_bn_in_head': False}


class CheckpointWriteError(RuntimeError):
  """A checkpoint could not be written (disk full, permissions...)."""


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), 'checkpoints')


def flatten(d: Dict[str, Any], prefix: str = '') -> Dict[str, Any]:
  """{'a': {'b': 1}} → {'a.b': 1}."""
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(flatten(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = list(v) if isinstance(v, tuple) else v
  return out


def _flat_pair(saved: Dict[str, Any], current: Dict[str, Any]):
  """Both configs flattened, the saved one with ADDED_KEYS' old values."""
  a, b = flatten(saved), flatten(current)
  a.update({k: v for k, v in ADDED_KEYS.items() if k not in a and k in b})
  return a, b


def config_differences(saved: Dict[str, Any], current: Dict[str, Any]):
  """(unsafe differing keys, safe differing keys) between two configs.

  Keys the saved config does not have at all (settings added to ssl_pairs
  after the checkpoint was written) count as safe: they did not exist when
  the finished steps were computed — unless ADDED_KEYS records the value the
  code used before and the current config changes it.
  """
  a, b = _flat_pair(saved, current)
  differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
  safe = [k for k in differing
          if k not in a or any(k == s or (s.endswith('.') and k.startswith(s))
                               for s in RESUME_SAFE_KEYS)]
  return [k for k in differing if k not in safe], safe


class Checkpoints:
  """Saves and restores a run's checkpoints (one Orbax CheckpointManager)."""

  def __init__(self, workdir: str, keep: int = 2):
    if keep < 1:
      raise UserError(f'keep_checkpoints={keep} must be at least 1.')
    self.directory = checkpoint_dir(workdir)
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        item_names=ITEMS)

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state, data: Dict[str, Any],
           config: Dict[str, Any]) -> None:
    """Starts an asynchronous save of step ``step``."""
    data = dict(data, format_version=FORMAT_VERSION,
                ssl_pairs_version=ssl_pairs.__version__)
    with self._write_errors(step):
      self.manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data),
          config=ocp.args.JsonSave(config)), force=True)

  @contextlib.contextmanager
  def _write_errors(self, step):
    """Turns a failed write into one clear message naming what is intact."""
    try:
      yield
    except OSError as e:
      complete = [s for s in self.manager.all_steps() if s != step]
      last = f'checkpoint {max(complete)} is the last complete one' \
          if complete else 'no earlier checkpoint exists'
      raise CheckpointWriteError(
          f'Writing checkpoint {step} to {self.directory} failed '
          f'({e.strerror or e}); {last} — free space (or fix permissions) '
          'and rerun the same command to resume.') from e

  def read_config(self, step: int) -> Dict[str, Any]:
    return self.manager.restore(
        step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))['config']

  def restore(self, step: int, state_like) -> Tuple[Any, Dict[str, Any]]:
    """(state, data dict) of ``step``, laid out like ``state_like``."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
    out = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract),
        data=ocp.args.JsonRestore()))
    return out['state'], out['data']

  def restore_latest_good(self, state_like, current_config: Dict[str, Any],
                          workdir: str):
    """(step, state, data) of the newest checkpoint that restores, or None.

    A checkpoint that cannot be read (a damaged file, say) is moved aside to
    ``workdir/checkpoints_unreadable/<step>`` — never deleted — with a warning,
    and the next older one is tried. A readable checkpoint of a different
    config or format is refused (UserError), not skipped.
    """
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        saved_config = self.read_config(step)
      except Exception as e:  # pylint: disable=broad-except
        self._set_aside(step, workdir, e)
        continue
      check_resume_config(saved_config, current_config, workdir)
      try:
        state, data = self.restore(step, state_like)
      except Exception as e:  # pylint: disable=broad-except
        self._set_aside(step, workdir, e)
        continue
      version = data.get('format_version', FORMAT_VERSION)
      if version != FORMAT_VERSION:
        raise UserError(
            f'{workdir} holds a checkpoint in format {version} (ssl_pairs '
            f'{data.get("ssl_pairs_version", "?")}) but this ssl_pairs '
            f'({ssl_pairs.__version__}) reads format {FORMAT_VERSION}; use '
            'another --workdir or the ssl_pairs version that wrote it.')
      return step, state, data
    return None

  def _set_aside(self, step: int, workdir: str, error: Exception) -> None:
    aside = os.path.join(os.path.abspath(workdir), 'checkpoints_unreadable')
    os.makedirs(aside, exist_ok=True)
    target = os.path.join(aside, str(step))
    if os.path.exists(target):
      shutil.rmtree(target)
    shutil.move(os.path.join(self.directory, str(step)), target)
    self.manager.reload()
    say(f'Warning: checkpoint {step} in {self.directory} is unreadable '
        f'({type(error).__name__}: {str(error)[:200]}); moved it to {target} '
        'and falling back to the previous checkpoint.')

  def wait(self) -> None:
    with self._write_errors(self.manager.latest_step()):
      self.manager.wait_until_finished()

  def close(self) -> None:
    self.wait()
    self.manager.close()


def check_resume_config(saved: Dict[str, Any], current: Dict[str, Any],
                        workdir: str) -> None:
  """Refuses to resume with a config that changes what was computed."""
  unsafe, safe = config_differences(saved, current)
  if unsafe:
    a, b = _flat_pair(saved, current)
    shown = ', '.join(f'{k} ({a.get(k)!r} → {b.get(k)!r})' for k in unsafe[:5])
    more = f' and {len(unsafe) - 5} more' if len(unsafe) > 5 else ''
    raise UserError(
        f'{workdir} holds a checkpoint of a different config ({shown}{more}); '
        'use another --workdir, or run with the checkpoint\'s values to '
        'resume it.')
  if safe:
    say(f'Resuming with changed settings: {", ".join(safe)}.')


def find_checkpoint_dir(path: str) -> str:
  """Accepts a workdir or its checkpoints/ folder; returns the latter."""
  path = os.path.abspath(os.path.expanduser(path))
  for candidate in (os.path.join(path, 'checkpoints'), path):
    if os.path.isdir(candidate) and any(
        d.isdigit() for d in os.listdir(candidate)):
      return candidate
  raise UserError(f'No checkpoint found under {path}; pass the workdir of a '
                  'finished or running training (--config.restore=runs/NAME).')


def restore_encoder(path: str, step: Optional[int] = None):
  """Restores only what evaluation needs from a checkpoint.

  Args:
    path: a workdir or its checkpoints/ folder.
    step: checkpoint step (default: the latest).

  Returns:
    (config dict, step, {'params': backbone params, 'batch_stats': backbone
    batch stats} as arrays on the first local device, data dict with the
    run's bookkeeping such as 'train_seconds').
  """
  directory = find_checkpoint_dir(path)
  manager = ocp.CheckpointManager(
      directory,
      item_handlers={'state': ocp.PyTreeCheckpointHandler(),
                     'data': ocp.JsonCheckpointHandler(),
                     'config': ocp.JsonCheckpointHandler()},
      options=ocp.CheckpointManagerOptions(read_only=True))
  step = manager.latest_step() if step is None else step
  if step is None or step not in manager.all_steps():
    raise UserError(f'Checkpoint step {step} is not in {directory} (steps: '
                    f'{manager.all_steps()}).')
  tree = manager.item_metadata(step)['state'].tree
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  wanted = {k: {'backbone': tree[k]['backbone']}
            for k in ('params', 'batch_stats') if 'backbone' in tree.get(k, {})}
  abstract = jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), wanted)
  restore_args = jax.tree.map(
      lambda _: ocp.ArrayRestoreArgs(sharding=device), wanted)
  out = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.PyTreeRestore(abstract, restore_args=restore_args,
                                   partial_restore=True),
      data=ocp.args.JsonRestore(), config=ocp.args.JsonRestore()))
  manager.close()
  variables = {k: out['state'][k]['backbone'] for k in wanted}
  variables.setdefault('batch_stats', {})
  return out['config'], step, variables, out['data']
