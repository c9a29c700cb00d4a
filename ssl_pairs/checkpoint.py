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
import re
import shutil
import sys
import threading
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
                    'restore', 'restart', 'eval.', 'data.data_dir',
                    'data.download', 'data.num_workers', 'data.prefetch', 'model.remat')
# Settings added to ssl_pairs after checkpoints were written, with the value
# the code used before they existed: a checkpoint without one resumes safely
# only if the new config keeps that value.
ADDED_KEYS = {'optim.bias_lr_factor': 1.0, 'method.shuffle_bn_groups': 1,
              'method.use_bn_in_head': False, 'eval.online_probe': False,
              'model.padding': 'same', 'model.remat': False, 'restart': False}
# Under a resume-safe prefix, but they change what the state holds.
RESUME_UNSAFE_KEYS = ('eval.online_probe',)


class CheckpointWriteError(RuntimeError):
  """A checkpoint could not be written (disk full, permissions...)."""


class _ClosedLoopNoiseFilter:
  """sys.stderr without the "Event loop is closed" tracebacks of a failed read.

  When Orbax fails to read a damaged checkpoint, its asyncio loop closes while
  TensorStore reads of the same checkpoint are still in flight; each of their
  completion callbacks then prints a ``RuntimeError: Event loop is closed``
  traceback from a TensorStore thread — over a thousand lines that say
  nothing the one-line warning does not. This wrapper buffers each thread's
  output by line and drops exactly those tracebacks (a traceback block whose
  exception line is that error); everything else passes through unchanged.
  """

  NOISE = 'RuntimeError: Event loop is closed'

  def __init__(self, stream):
    self._stream = stream
    self._lock = threading.Lock()
    self._pending = {}  # thread id -> (partial line, traceback block or None)

  def write(self, text):
    with self._lock:
      tid = threading.get_ident()
      partial, block = self._pending.get(tid, ('', None))
      lines = (partial + text).split('\n')
      for line in lines[:-1]:
        block = self._line(line, block)
      self._pending[tid] = (lines[-1], block)
    return len(text)

  def _line(self, line, block):
    if block is None:
      if line.startswith('Traceback (most recent call last)'):
        return [line]
      self._stream.write(line + '\n')
      return None
    block.append(line)
    if line.startswith(' '):
      return block
    if line.strip() != self.NOISE:  # A real traceback: show it all.
      self._stream.write('\n'.join(block) + '\n')
    return None

  def flush(self):
    self._stream.flush()

  def __getattr__(self, name):
    return getattr(self._stream, name)


def quiet_closed_loop_noise() -> None:
  """Installs :class:`_ClosedLoopNoiseFilter` on sys.stderr (once)."""
  if not isinstance(sys.stderr, _ClosedLoopNoiseFilter):
    sys.stderr = _ClosedLoopNoiseFilter(sys.stderr)


def describe_error(error: Exception, limit: int = 160) -> str:
  """An exception in a few readable words: its type and first message line,
  with object reprs (``<bound method …>``) and long paths cut out."""
  text = next((l.strip() for l in str(error).splitlines() if l.strip()), '')
  text = re.sub(r'<[^<>]*>', '…', text)
  text = text if len(text) <= limit else text[:limit - 1] + '…'
  return f'{type(error).__name__}: {text}' if text else type(error).__name__


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
  safe = [k for k in differing if k not in RESUME_UNSAFE_KEYS and (
          k not in a or any(k == s or (s.endswith('.') and k.startswith(s))
                               for s in RESUME_SAFE_KEYS))]
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
                          workdir: str, restart: bool = False):
    """(step, state, data) of the newest checkpoint that restores, or None.

    A checkpoint that cannot be read (a damaged file, say) is moved aside to
    ``workdir/checkpoints_unreadable/<step>`` — never deleted — with a warning,
    and the next older one is tried. A readable checkpoint of a different
    config or format is refused (UserError), not skipped. When checkpoints
    exist but none is readable, the run is refused (starting over would throw
    away its time) unless ``restart`` (``config.restart``) asks for it; None
    means "start from step 0" (no checkpoint, or ``restart``).
    """
    steps = sorted(self.manager.all_steps(), reverse=True)
    if steps:
      quiet_closed_loop_noise()  # Before a failed read can print any.
    for i, step in enumerate(steps):
      older = steps[i + 1:]
      try:
        saved_config = self.read_config(step)
      except Exception as e:  # pylint: disable=broad-except
        self._set_aside(step, workdir, e, older)
        continue
      check_resume_config(saved_config, current_config, workdir)
      try:
        state, data = self.restore(step, state_like)
      except Exception as e:  # pylint: disable=broad-except
        self._set_aside(step, workdir, e, older)
        continue
      check_format(data, workdir)
      return step, state, data
    if steps and not restart:
      aside = os.path.join(os.path.abspath(workdir), 'checkpoints_unreadable')
      raise UserError(
          f'No checkpoint in {self.directory} is readable (steps '
          f'{", ".join(map(str, sorted(steps)))}, now in {aside}); rerun with '
          '--config.restart=True to train from step 0 instead, or restore '
          'them from a backup.')
    if steps:
      say(f'Starting {workdir} over from step 0 (config.restart); the '
          'unreadable checkpoints stay in checkpoints_unreadable/.')
    return None

  def _set_aside(self, step: int, workdir: str, error: Exception,
                 older=()) -> None:
    quiet_closed_loop_noise()
    aside = os.path.join(os.path.abspath(workdir), 'checkpoints_unreadable')
    os.makedirs(aside, exist_ok=True)
    target = os.path.join(aside, str(step))
    if os.path.exists(target):
      shutil.rmtree(target)
    shutil.move(os.path.join(self.directory, str(step)), target)
    self.manager.reload()
    then = (f'trying checkpoint {older[0]}' if older else
            'no older checkpoint is left')
    say(f'Warning: checkpoint {step} in {self.directory} is unreadable '
        f'({describe_error(error)}); moved it to {target}; {then}.')

  def wait(self) -> None:
    with self._write_errors(self.manager.latest_step()):
      self.manager.wait_until_finished()

  def close(self) -> None:
    self.wait()
    self.manager.close()


def check_format(data: Dict[str, Any], workdir: str) -> None:
  """Refuses a checkpoint written in another format version."""
  version = data.get('format_version', FORMAT_VERSION)
  if version != FORMAT_VERSION:
    raise UserError(
        f'{workdir} holds a checkpoint in format {version} (ssl_pairs '
        f'{data.get("ssl_pairs_version", "?")}) but this ssl_pairs '
        f'({ssl_pairs.__version__}) reads format {FORMAT_VERSION}; use '
        'another --workdir or the ssl_pairs version that wrote it.')


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
  quiet_closed_loop_noise()  # Before a failed read can print any.
  try:
    steps = sorted(manager.all_steps(), reverse=True)
    if step is not None:
      if step not in steps:
        raise UserError(f'Checkpoint step {step} is not in {directory} '
                        f'(steps: {sorted(steps)}).')
      return _restore_encoder_step(manager, step)
    failures = []
    for candidate in steps:
      try:
        out = _restore_encoder_step(manager, candidate)
      except UserError:
        raise
      except Exception as e:  # pylint: disable=broad-except
        quiet_closed_loop_noise()
        failures.append((candidate, describe_error(e)))
        continue
      if failures:
        say(f'Warning: checkpoint {failures[0][0]} in {directory} is '
            f'unreadable ({failures[0][1]}); evaluating checkpoint '
            f'{candidate} instead (the files are left as they are).')
      return out
    raise UserError(
        f'No checkpoint in {directory} is readable (steps '
        f'{", ".join(str(s) for s, _ in failures) or "none"}; the newest: '
        f'{failures[0][1] if failures else "-"}); nothing to evaluate.')
  finally:
    manager.close()


def _restore_encoder_step(manager, step: int):
  """``restore_encoder`` of one step (raises whatever Orbax raises)."""
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
  check_format(out['data'], os.path.dirname(manager.directory))
  if not isinstance(out['config'], dict) or 'model' not in out['config']:
    raise ValueError('its config.json is not a training config')
  variables = {k: out['state'][k]['backbone'] for k in wanted}
  variables.setdefault('batch_stats', {})
  return out['config'], step, variables, out['data']
