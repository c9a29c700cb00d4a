"""Training: ``run(config, workdir)`` in five named steps.

1. ``_data``: the mesh, the pretraining images and pairs, their batches.
2. ``initial_state``: method, lr schedule, optimizer and a fresh TrainState
   initialised directly on the mesh.
3. ``_resume``: the latest readable checkpoint (or a fresh start; a finished,
   evaluated workdir returns its report).
4. ``_Loop``: one jitted step per iteration, then one block per concern —
   metrics flushed every ``log_every_steps``, checkpoints every
   ``checkpoint_every_steps``, a stop on SIGTERM/SIGINT, learning-curve
   evaluations every ``eval.every_epochs`` — each behind ``itstime``.
5. ``_report``: the final evaluation, eval.json and eval.md.

``evaluate_init`` is steps 1, 2 and 5 with no step in between.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import signal
import threading
import time
from typing import Any, Dict, Optional

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import ml_collections
import numpy as np

from ssl_pairs import checkpoint as checkpoint_lib
from ssl_pairs import metrics as metrics_lib
from ssl_pairs import online_probe
from ssl_pairs import optim
from ssl_pairs import sharding as sharding_lib
from ssl_pairs import workdir as workdir_lib
from ssl_pairs import state as state_lib
from ssl_pairs.data import pair_sets
from ssl_pairs.data import pipeline
from ssl_pairs.data import sources as sources_lib
from ssl_pairs.errors import UserError
from ssl_pairs.evals import run as eval_lib
from ssl_pairs.mining import refresh as refresh_lib
from ssl_pairs.mining import tables as tables_lib
from ssl_pairs.methods import RunInfo, get_method
from ssl_pairs.state import TrainState
from ssl_pairs.step import make_train_step

# Fault injection for crash tests: SIGKILL this process right after the given
# step (its metrics flushed, any checkpoint save possibly still in flight), or
# right after starting the asynchronous save of the given step (mid-write).
KILL_AT_STEP_ENV = 'SSL_PAIRS_KILL_AT_STEP'
KILL_IN_SAVE_ENV = 'SSL_PAIRS_KILL_IN_SAVE_AT_STEP'
# ... and for the interrupted-evaluation test: at the start of the final
# evaluation write workdir/final_eval_started and wait 60 s (a signal ends it).
PAUSE_BEFORE_EVAL_ENV = 'SSL_PAIRS_PAUSE_BEFORE_EVAL'
# Exit status after a SIGTERM/SIGINT stop with a checkpoint saved
# (EX_TEMPFAIL: "try again" — rerunning the same command resumes).
PREEMPTED_EXIT_CODE = 75


class Preempted(Exception):
  """Training stopped on SIGTERM/SIGINT after saving a checkpoint."""


class _StopSignals:
  """Turns SIGTERM/SIGINT into a request to stop after the current step.

  The first signal sets the request and restores the default handlers, so a
  second Ctrl-C interrupts at once. With several processes the request is
  agreed on at log boundaries (any process asked ⇒ all stop at the same step),
  since every process must take part in the final checkpoint.
  """

  def __init__(self):
    self.signal_name = None
    self._previous = {}
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)

  def _handle(self, signum, frame):
    del frame
    self.signal_name = signal.Signals(signum).name
    self.restore()

  def restore(self):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous = {}

  def stop_now(self, step: int, every: int) -> bool:
    if jax.process_count() == 1:
      return self.signal_name is not None
    if step % every:
      return False
    flags = multihost_utils.process_allgather(
        np.int32(self.signal_name is not None))
    if np.max(flags) and self.signal_name is None:
      self.signal_name = 'a signal on another process'
    return bool(np.max(flags))


class _Interrupted(Exception):
  pass


@contextlib.contextmanager
def _signals_raise_preempted(after: str):
  """SIGTERM/SIGINT inside the block raise ``Preempted('Stopped by <signal>
  ' + after)`` instead of killing the process or a KeyboardInterrupt."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  def handle(signum, frame):
    del frame
    raise _Interrupted(signal.Signals(signum).name)

  previous = {sig: signal.signal(sig, handle)
              for sig in (signal.SIGTERM, signal.SIGINT)}
  try:
    yield
  except _Interrupted as e:
    raise Preempted(f'Stopped by {e} {after}') from None
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, handler)


def validate_config(config) -> None:
  """Rejects impossible sizes and rates before any work is done."""
  checks = [
      (config.batch_size > 0,
       f'batch_size={config.batch_size} must be positive.'),
      (config.epochs > 0 or config.total_steps > 0,
       'Set epochs or total_steps to a positive value.'),
      (config.total_steps >= 0,
       f'total_steps={config.total_steps} must not be negative.'),
      (config.data.image_size > 0,
       f'data.image_size={config.data.image_size} must be positive.'),
      (config.data.load_size >= -1,
       f'data.load_size={config.data.load_size} must be 0 (= image_size), '
       '-1 (the stored size) or a size in px.'),
      (config.log_every_steps > 0,
       f'log_every_steps={config.log_every_steps} must be positive.'),
      (config.checkpoint_every_steps > 0,
       f'checkpoint_every_steps={config.checkpoint_every_steps} must be '
       'positive.'),
      (config.model.width_multiplier > 0,
       f'model.width_multiplier={config.model.width_multiplier} must be '
       'positive.'),
      (config.eval.every_epochs >= 0,
       f'eval.every_epochs={config.eval.every_epochs} must not be negative.'),
      (config.eval.batch_size > 0,
       f'eval.batch_size={config.eval.batch_size} must be positive.'),
      (config.optim.warmup_epochs >= 0,
       f'optim.warmup_epochs={config.optim.warmup_epochs} must not be '
       'negative.'),
      (config.data.num_workers >= 1,
       f'data.num_workers={config.data.num_workers} must be at least 1.'),
      (config.data.augment_on in ('host', 'device'),
       f'data.augment_on={config.data.augment_on!r} must be host (views made '
       'by the grain workers) or device (inside the jitted step).'),
  ]
  if 'temperature' in config.method:
    checks.append((config.method.temperature > 0,
                   f'method.temperature={config.method.temperature} must be '
                   'positive.'))
  aug = config.data.augment
  if aug.local_crops and config.method.name != 'dino':
    checks.append((False, f'data.augment.local_crops={aug.local_crops} '
                   '(multi-crop) is only used by DINO; set it to 0 for '
                   f'{config.method.name}.'))
  if (config.data.pairs == 'spps' and
      config.method.name not in ('simclr', 'mocov2')):
    checks.append((False, "data.pairs='spps' adds semantic positives to a "
                   'contrastive loss, which simclr and mocov2 have; use one '
                   f'of them instead of {config.method.name}.'))
  for key in ('jitter_prob', 'gray_prob', 'blur_prob'):
    value = aug[key]
    ok = 0 <= value <= 1 or (key == 'blur_prob' and value == -1)
    checks.append((ok, f'data.augment.{key}={value} must be a probability in '
                   '[0, 1]' + (' (or -1 for auto)' if key == 'blur_prob'
                                else '') + '.'))
  for ok, message in checks:
    if not ok:
      raise UserError(message)


def load_size(data_config) -> Optional[int]:
  """Resolution images are held at before the views are cut from them."""
  size = data_config.get('load_size', 0)
  return None if size == -1 else (size or data_config.image_size)


def load_pretraining_data(config, workdir: Optional[str] = None):
  """(image source, pair set) of the pretraining data."""
  data_dir = sources_lib.resolve_data_dir(config.data.data_dir)
  source = sources_lib.load_split(config.data.dataset, config.data.split,
                                  data_dir, load_size(config.data),
                                  download=config.data.get('download', True))
  if config.data.object_crops:
    source = sources_lib.object_crops(source)
    metrics_lib.say(f'Pretraining on object crops: {len(source)} images cut '
                    'to their boxes.')
  pair_set = tables_lib.build_pair_set(config.data, source, config.model,
                                      workdir)
  # Diagnostics only: labels are read here, never by the pairs or the step.
  stats = {}
  if isinstance(pair_set, pair_sets.NeighbourPairSet):
    stats = {'pair_precision': pair_set.precision(source.labels)}
    metrics_lib.say(
        f'Mined pairs: k={config.data.gps.k} neighbours per image in the '
        f'{config.data.gps.prior!r} prior; pair precision (same label) '
        f'{100 * stats["pair_precision"]:.1f} %.')
  if hasattr(pair_set, 'shot_summary'):
    stats = {'shots': int(pair_set.shots.max()) + 1}
    metrics_lib.say(f'Temporal pairs: {pair_set.shot_summary()}, gaps '
                    f'{config.data.temporal.min_gap}–'
                    f'{config.data.temporal.max_gap} frames'
                    f'{", tracked regions" if pair_set.tracker else ""}.')
  if isinstance(pair_set, pair_sets.PositiveSetPairs):
    sizes = pair_set.set_sizes()
    stats = {'pair_precision': pair_set.precision(source.labels),
             'mean_set_size': float(sizes.mean()),
             'empty_fraction': float(np.mean(sizes == 0))}
    metrics_lib.say(
        f'Semantic positive sets ({config.data.spps.prior!r} prior, '
        f'{config.data.spps.metric} threshold {config.data.spps.threshold}): '
        f'mean size {sizes.mean():.2f} of at most '
        f'{config.data.spps.max_positives}, {100 * np.mean(sizes == 0):.1f} % '
        'empty (plain pair); pair precision (same label) '
        f'{100 * stats["pair_precision"]:.1f} %.')
  if stats and workdir and jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, 'pair_stats.json'), 'w') as f:
      json.dump(stats, f, indent=1)
  return source, pair_set


def run_length(config, num_pairs: int):
  """(steps per epoch as a float, total steps)."""
  steps_per_epoch = num_pairs / config.batch_size
  total = config.total_steps or int(config.epochs * steps_per_epoch)
  return steps_per_epoch, max(int(total), 1)


def create_state(method, tx, config, mesh) -> TrainState:
  """A fresh TrainState, initialised directly with replicated sharding."""
  size = config.data.image_size
  sample = jnp.zeros((2, size, size, 3), jnp.float32)

  def init(rng):
    model_rng, method_rng = jax.random.split(rng)
    variables = method.init_variables(model_rng, sample)
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=variables['params'],
        batch_stats=variables['batch_stats'],
        opt_state=tx.init(variables['params']),
        method_state=method.init_method_state(method_rng, variables))

  def init_with_probe(rng):
    state = init(rng)
    return state.replace(method_state=dict(state.method_state, **{
        online_probe.KEY: online_probe.init(method.feature_dim,
                                            method.run.num_classes)}))

  return jax.jit(init_with_probe if online_probe.enabled(config) else init, out_shardings=sharding_lib.replicated(mesh))(
      jax.random.key(config.seed))


def initial_state(config, mesh, source, steps_per_epoch, total_steps):
  """(method, lr schedule, optimizer, fresh TrainState) of a run."""
  if online_probe.enabled(config) and source.num_classes < 2:
    raise UserError(
        f'eval.online_probe=True needs a labelled pretraining dataset; '
        f'{source.name} has {source.num_classes} class(es) — turn it off or '
        'pretrain on a labelled one.')
  method = get_method(config, RunInfo(
      total_steps=total_steps, steps_per_epoch=steps_per_epoch,
      num_images=len(source), num_classes=source.num_classes))
  schedule = optim.learning_rate_schedule(config.optim, total_steps,
                                          steps_per_epoch, config.batch_size)
  tx = optim.make_optimizer(config.optim, schedule)
  return method, schedule, tx, create_state(method, tx, config, mesh)


def evaluate_init(config: ml_collections.ConfigDict,
                  workdir: str) -> Dict[str, Any]:
  """Evaluates the encoder of ``config`` as initialised, before any step.

  The random-init baseline of a comparison: a run of ``config`` stopped
  before its first step — the same data, network, seed and evaluation steps
  as ``run(config, workdir)``, whose learning curve reports the same numbers
  at epoch 0. Writes workdir/config.json and workdir/eval.json (step 0, no
  training time).
  """
  validate_config(config)
  workdir = workdir_lib.prepare(workdir)
  with workdir_lib.exclusive(workdir, 'evaluation of the untrained encoder',
                             enabled=jax.process_index() == 0):
    data = _data(config, workdir)
    *_, state = initial_state(config, data.mesh, data.source,
                              data.steps_per_epoch, data.total_steps)
    _write_config(config, workdir)
    return _report(config, workdir, _evaluator(config, data.mesh), state,
                   0, data.steps_per_epoch, 0.0)


def _finished_report(workdir, step, total_steps, config):
  """eval.json of a run that is complete and evaluated on every configured
  dataset at its last step, else None (so a rerun resumes or evaluates)."""
  path = os.path.join(workdir, 'eval.json')
  if step != total_steps or not os.path.exists(path):
    return None
  with open(path) as f:
    report = json.load(f)
  wanted = {eval_lib.result_key(name) for name, optional in
            eval_lib.parse_datasets(config.eval.datasets, config.data.dataset)
            if not optional}
  done = {name for name, r in report.get('results', {}).items()
          if r.get('step') == total_steps}
  return report if wanted <= done else None


def _curve_steps(config, steps_per_epoch, total_steps):
  """{step: epoch} of the learning-curve evaluations (epoch 0 and the end)."""
  every = config.eval.every_epochs
  if not every:
    return {}
  out, e = {}, 0.0
  while e * steps_per_epoch < total_steps:
    out[int(round(e * steps_per_epoch))] = round(e, 4)
    e += every
  out[total_steps] = round(total_steps / steps_per_epoch, 4)
  return out


def run(config: ml_collections.ConfigDict, workdir: str,
        stop_after_step: int = 0) -> Dict[str, Any]:
  """Trains ``config`` in ``workdir`` (resuming if it holds a checkpoint).

  ``stop_after_step`` > 0 stops the run after that step as a preemption
  would: the checkpoint is saved and ``Preempted`` raised, while the
  schedules stay those of the full run (launch/early_steps.py uses it).

  Returns:
    The evaluation report (also in workdir/eval.json).
  """
  validate_config(config)
  workdir = workdir_lib.prepare(workdir)
  with workdir_lib.exclusive(workdir, 'training',
                             enabled=jax.process_index() == 0):
    finished = _finished_before_loading(config, workdir)
    if finished is not None:
      return finished
    return _run(config, workdir, stop_after_step)


def _say_finished(workdir, step, total_steps):
  metrics_lib.say(
      f'{workdir} is finished (step {step} of {total_steps}, evaluated); '
      'its results are in eval.json. To evaluate it again with other '
      f'settings: ssl-pairs eval --config.restore={workdir} '
      '[--config.eval.…] (or python main.py --config=configs/linear_eval.py '
      f'--config.restore={workdir}).')


def _finished_before_loading(config, workdir):
  """The report of a run finished in ``workdir`` with this very config,
  decided from its config.json and eval.json alone — so a rerun says so at
  once instead of loading the data and restoring the checkpoint first — or
  None. Its checkpoints are not read: a damaged one shows when the workdir is
  next evaluated, exported or resumed with a longer run. (One process only:
  several would each read their own disk.)"""
  if jax.process_count() != 1:
    return None
  try:
    with open(os.path.join(workdir, 'config.json')) as f:
      saved = json.load(f)
    with open(os.path.join(workdir, 'eval.json')) as f:
      total = json.load(f).get('total_steps')
  except (OSError, ValueError):
    return None
  if total is None or saved != json.loads(json.dumps(config.to_dict())):
    return None
  report = _finished_report(workdir, total, total, config)
  if report is not None:
    _say_finished(workdir, total, total)
  return report


@dataclasses.dataclass
class _Data:
  """The data step's output: mesh, images, pairs, batch stream, run length."""
  mesh: Any
  source: Any
  pair_set: Any
  batches: Any
  steps_per_epoch: float
  total_steps: int


def _data(config, workdir: str) -> _Data:
  """Step 1: the mesh, the pretraining images and pairs, and their batches."""
  mesh = sharding_lib.make_mesh()
  sharding_lib.check_batch_size(config.batch_size, mesh)
  source, pair_set = load_pretraining_data(config, workdir)
  steps_per_epoch, total_steps = run_length(config, len(pair_set))
  batches = pipeline.train_batches(
      source, pair_set, config.data, config.batch_size, config.seed,
      jax.process_index(), jax.process_count())
  return _Data(mesh, source, pair_set, batches, steps_per_epoch, total_steps)


def _write_config(config, workdir: str) -> None:
  if jax.process_index() == 0:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      json.dump(config.to_dict(), f, indent=2, sort_keys=True)


def _evaluator(config, mesh) -> eval_lib.Evaluator:
  return eval_lib.Evaluator(
      config.eval, sources_lib.resolve_data_dir(config.data.data_dir),
      config.data.image_size, config.model, mesh, seed=config.seed,
      pretraining_dataset=config.data.dataset,
      download=config.data.get('download', True))


CACHE_DIR_ENV = 'SSL_PAIRS_CACHE_DIR'


def untrained_cache_path(config) -> str:
  """Where the untrained encoder's evaluation of ``config`` is cached: one
  file per everything that decides it — the network (model.*), the method
  (its parameters are initialised from one key), the seed, the resolution,
  the evaluation settings and the data folder."""
  key = {'model': config.model.to_dict(), 'method': config.method.name,
         'seed': config.seed, 'image_size': config.data.image_size,
         'eval': {k: v for k, v in config.eval.to_dict().items()
                  if k not in ('every_epochs', 'online_probe', 'untrained')},
         'pretraining_dataset': config.data.dataset,
         'data_dir': os.path.abspath(
             sources_lib.resolve_data_dir(config.data.data_dir)),
         'version': 1}
  digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()
                          ).hexdigest()[:20]
  root = os.environ.get(CACHE_DIR_ENV) or os.path.join('~', '.cache',
                                                       'ssl_pairs')
  return os.path.join(os.path.expanduser(root), 'untrained', digest + '.json')


def _untrained_results(config, data, evaluator, loop) -> Optional[Dict]:
  """The untrained encoder's results for the final report: the learning
  curve's epoch-0 point when the run has one, else the cache, else one
  evaluation of ``initial_state`` now (then cached). None when
  ``eval.untrained`` is off."""
  if not config.eval.get('untrained', True):
    return None
  curve = loop.curve_results(0)
  if curve is not None:
    return curve
  path = untrained_cache_path(config)
  # One process only: with several, each would decide from its own disk
  # whether to join the (collective) evaluation.
  if jax.process_count() == 1 and os.path.exists(path):
    try:
      with open(path) as f:
        return json.load(f)['results']
    except (OSError, ValueError, KeyError):
      pass  # A torn or foreign file: evaluate again and rewrite it.
  metrics_lib.say('Evaluating the untrained encoder (same network and seed) '
                  'for comparison, once: cached in '
                  f'{os.path.dirname(path)}; --config.eval.untrained=False '
                  'skips it.')
  *_, state = initial_state(config, data.mesh, data.source,
                            data.steps_per_epoch, data.total_steps)
  results = evaluator(state_lib.encoder_variables(state))
  if jax.process_index() == 0:
    try:
      os.makedirs(os.path.dirname(path), exist_ok=True)
      eval_lib.atomic_write(path, json.dumps({'results': results}))
    except (OSError, UserError) as e:
      metrics_lib.say(f'Could not cache the untrained evaluation ({e}).')
  return results


def _resume(config, workdir, checkpoints, state, total_steps):
  """Step 3: (start step, state, iterator state, train seconds, finished
  report or None) from the latest readable checkpoint, or a fresh start."""
  restored = checkpoints.restore_latest_good(
      state, config.to_dict(), workdir, restart=config.get('restart', False))
  if restored is None:
    return 0, state, None, 0.0, None
  start, state, saved = restored
  finished = _finished_report(workdir, start, total_steps, config)
  if finished is not None:
    _say_finished(workdir, start, total_steps)
  else:
    metrics_lib.say(f'Resumed {workdir} at step {start}.')
  return start, state, saved['iterator'], saved['train_seconds'], finished


def _online_probe(config, state):
  """(online probe params, pretraining dataset) for the evaluator, or None
  (also before the first step: an untrained probe's number means nothing)."""
  if not online_probe.enabled(config) or int(state.step) == 0:
    return None
  return (state.method_state[online_probe.KEY]['params'],
          config.data.dataset)


def itstime(step: int, every: int, total_steps: int) -> bool:
  """Whether a task done every ``every`` steps (0: only at the end) is due
  after ``step``: at its multiples and after the last step."""
  return step == total_steps or (every > 0 and step % every == 0)


def _classes_note(config) -> str:
  """Says when data.classes keeps only some of the dataset's classes (as
  ``:smoke`` does), so a subset never passes unnoticed."""
  classes = str(config.data.get('classes', 'all'))
  return '' if classes == 'all' else f' (pairs from data.classes={classes!r} only)'


def _run(config, workdir: str, stop_after_step: int) -> Dict[str, Any]:
  """``run`` in a prepared workdir whose lock this process holds: data,
  state, resume, loop, report."""
  data = _data(config, workdir)
  metrics_lib.say(
      f'Pretraining on {data.source.name} {data.source.split}: '
      f'{len(data.source)} images of {data.source.num_classes} classes'
      f'{_classes_note(config)}, {len(data.pair_set)} {config.data.pairs} '
      f'pairs, {data.total_steps} steps of {config.batch_size} pairs on '
      f'{data.mesh.devices.size} device(s).')
  method, schedule, tx, state = initial_state(
      config, data.mesh, data.source, data.steps_per_epoch, data.total_steps)
  checkpoints = checkpoint_lib.Checkpoints(workdir, config.keep_checkpoints)
  start, state, data_state, train_seconds, finished = _resume(
      config, workdir, checkpoints, state, data.total_steps)
  if finished is not None:
    checkpoints.close()
    return finished
  _write_config(config, workdir)
  loop = _Loop(config, workdir, data, checkpoints, (method, tx, schedule),
               state, start, data_state, train_seconds, stop_after_step)
  loop.run()
  # Training is over and its checkpoint saved: a SIGTERM or Ctrl-C now stops
  # with the documented 75, and the rerun evaluates.
  with _signals_raise_preempted(
      f'during the final evaluation; training is finished and checkpoint '
      f'{data.total_steps} is saved in {checkpoints.directory} — rerun the '
      'same command to evaluate it.'):
    if os.environ.get(PAUSE_BEFORE_EVAL_ENV) and jax.process_index() == 0:
      open(os.path.join(workdir, 'final_eval_started'), 'w').close()
      time.sleep(60)
    return _report(config, workdir, loop.evaluator, loop.state,
                   data.total_steps, data.steps_per_epoch, loop.train_seconds,
                   loop.curve_results(data.total_steps),
                   untrained=lambda: _untrained_results(
                       config, data, loop.evaluator, loop),
                   total_steps=data.total_steps)


def _report(config, workdir, evaluator, state, step, steps_per_epoch,
            train_seconds, results=None, untrained=None,
            total_steps=None) -> Dict[str, Any]:
  """Step 5: evaluates ``state`` (unless its ``results`` are known) and
  writes eval.json / eval.md; returns the report (empty off process 0).
  ``untrained``: a function giving the untrained encoder's results, shown
  beside the trained ones; ``total_steps``: the run's length, recorded so a
  rerun of a finished run is answered from eval.json."""
  t0 = time.time()
  if results is None:
    results = evaluator(state_lib.encoder_variables(state),
                        _online_probe(config, state))
  for r in results.values():
    r['step'] = step
  floor = untrained() if untrained is not None else None
  if jax.process_index() != 0:
    return {}
  info = {'run': config.name, 'step': step, 'epochs': step / steps_per_epoch,
          'train_seconds': round(train_seconds, 2),
          'eval_seconds': round(time.time() - t0, 2),
          'skipped': evaluator.skipped}
  if total_steps is not None:
    info['total_steps'] = total_steps
  if floor is not None:
    info['untrained'] = {name: dict(r, step=0) for name, r in floor.items()}
  return eval_lib.write_report(workdir, results, info)


class _Loop:
  """Step 4, the training loop: after each step, one flat block per concern
  — log, checkpoint, stop, evaluate — each behind its own ``itstime``."""

  def __init__(self, config, workdir, data, checkpoints, method_tx_schedule,
               state, start, data_state, train_seconds, stop_after_step):
    method, tx, schedule = method_tx_schedule
    self.config, self.data, self.checkpoints = config, data, checkpoints
    self.state, self.start, self.train_seconds = state, start, train_seconds
    self.stop_after_step = stop_after_step
    self.is_main = jax.process_index() == 0
    self.data_sharding = sharding_lib.data_sharding(data.mesh)
    state_sharding = jax.tree.map(lambda x: x.sharding, state)
    self.train_step = jax.jit(
        make_train_step(method, tx, schedule, config.seed),
        in_shardings=(state_sharding, self.data_sharding),
        out_shardings=(state_sharding, sharding_lib.replicated(data.mesh)),
        donate_argnums=0)
    self.evaluator = _evaluator(config, data.mesh)
    self.curve_steps = _curve_steps(config, data.steps_per_epoch,
                                    data.total_steps)
    self.curve_path = os.path.join(workdir, 'eval_curve.jsonl')
    if self.is_main:
      metrics_lib.truncate_jsonl(self.curve_path, start)
    self._curve = {}  # {step: results} evaluated by this process.
    self.refresh = None
    if getattr(data.pair_set, 'refresh_epochs', 0):
      self.refresh = refresh_lib.NeighbourRefresh(config, data.source,
                                                  data.pair_set, workdir)
      if start < data.total_steps:
        self.refresh.ensure(start + 1, state)
    self.iterator = self._iterator(data_state)
    self.logger = metrics_lib.MetricsLogger(
        workdir, data.total_steps, start, config.batch_size,
        progress=config.progress and self.is_main, write_files=self.is_main)
    self.pending, self.first_pending = [], start + 1
    self.kill_at = int(os.environ.get(KILL_AT_STEP_ENV, '0') or 0)
    self.kill_in_save = int(os.environ.get(KILL_IN_SAVE_ENV, '0') or 0)

  def _iterator(self, position_state):
    return pipeline.DeviceIterator(
        self.data.batches, self.data_sharding, position_state,
        num_threads=self.config.data.num_workers,
        prefetch=self.config.data.prefetch)

  def run(self):
    c, total = self.config, self.data.total_steps
    signals = _StopSignals()
    try:
      done = {r['step'] for r in metrics_lib.read_jsonl(self.curve_path)}
      if self.start in self.curve_steps and self.start not in done:
        self._evaluate(self.start)
      self.t_last = time.time()
      for step in range(self.start + 1, total + 1):
        self._train(step)
        stop = (signals.stop_now(step, c.log_every_steps) or
                step == self.stop_after_step)
        log = itstime(step, c.log_every_steps, total) or stop
        save = itstime(step, c.checkpoint_every_steps, total) or stop
        evaluate = step in self.curve_steps
        if log or save or evaluate:  # Metrics and time up to this step.
          self._log(step)
        if save:
          self._save(step)
        if stop:
          self._stop(step, signals.signal_name)
        if evaluate:
          self._evaluate(step)
        if log or save or evaluate:  # Time spent on them is not training.
          self.t_last = time.time()
        if step == self.kill_at:
          os.kill(os.getpid(), signal.SIGKILL)
    finally:
      signals.restore()
      self.iterator.close()
      self.logger.close()
      self.checkpoints.close()

  def _train(self, step):
    """One step (after a due neighbour refresh) and the non-finite check."""
    if self.refresh is not None and self.refresh.ensure(step, self.state):
      stale = self.iterator  # Its prefetched batches have the old pairs.
      self.iterator = self._iterator(stale.state())
      stale.close()
    self.state, m = self.train_step(self.state, next(self.iterator))
    self.pending.append(m)
    # A non-finite step stops the run at once, naming that step: its flag is
    # read one step late, after the next step is queued, so the check never
    # leaves the device idle.
    if len(self.pending) > 1 and int(self.pending[-2]['nonfinite']):
      self.logger.write(self.first_pending,
                        jax.device_get(self.pending[:-1]))  # Raises.

  def _log(self, step):
    self.logger.write(self.first_pending, jax.device_get(self.pending))
    self.pending, self.first_pending = [], step + 1
    self.train_seconds += time.time() - self.t_last

  def _save(self, step):
    self.checkpoints.save(step, self.state,
                          {'iterator': self.iterator.state(),
                           'train_seconds': self.train_seconds},
                          self.config.to_dict())
    if step == self.kill_in_save:
      os.kill(os.getpid(), signal.SIGKILL)

  def _stop(self, step, signal_name):
    self.checkpoints.wait()
    cause = (f'by {signal_name}' if signal_name else
             'as asked (stop_after_step)')
    raise Preempted(
        f'Stopped {cause} after step {step}; the checkpoint is in '
        f'{self.checkpoints.directory}/{step} — rerun the same command to '
        'resume.')

  def _evaluate(self, step):
    """A learning-curve point: eval_curve.jsonl, the log and TensorBoard."""
    results = self.evaluator(state_lib.encoder_variables(self.state),
                             _online_probe(self.config, self.state))
    self._curve[step] = results
    epoch = self.curve_steps[step]
    row = {'step': step, 'epoch': epoch,
           'train_seconds': round(self.train_seconds, 2), 'results': results}
    if not self.is_main:
      return
    with open(self.curve_path, 'a') as f:
      f.write(json.dumps(row) + '\n')
    summary = ', '.join(f'{d} ' + '/'.join(
        f'{k}={v:.1f}' for k, v in r.items()
        if k.startswith(('knn@', 'probe', 'online_probe')) and k not in (
            'probe_l2', 'probe_iterations')) for d, r in results.items())
    self.logger.message(f'epoch {epoch:g} (step {step}): {summary}')
    for d, r in results.items():
      self.logger.scalars(step, f'eval/{d}', r)

  def curve_results(self, step):
    """The results of the curve point at ``step``, if it has one, else None.

    Decided from the config, not from files, so every process of a
    multi-host run takes the same branch (the evaluator is a collective).
    """
    if step in self._curve:
      return self._curve[step]
    if step in self.curve_steps:  # A finished run started again: all read it.
      return [r for r in metrics_lib.read_jsonl(self.curve_path)
              if r['step'] == step][0]['results']
    return None
