"""Training: ``run(config, workdir)`` — mesh → data → state → jitted step → loop.

Sections, in order: data (sources and pairs), model and optimizer, state
initialised directly on the mesh, resume from the latest checkpoint, the loop
(metrics flushed every ``log_every_steps``; checkpoints every
``checkpoint_every_steps`` and at the end; learning-curve evaluations every
``eval.every_epochs``), and the final evaluation report.
"""

import contextlib
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
                                  data_dir, load_size(config.data))
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

  return jax.jit(init, out_shardings=sharding_lib.replicated(mesh))(
      jax.random.key(config.seed))


def initial_state(config, mesh, source, steps_per_epoch, total_steps):
  """(method, lr schedule, optimizer, fresh TrainState) of a run."""
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

  The random-init baseline of a comparison: the same network, seed and
  evaluation as ``run(config, workdir)``'s, whose learning curve would
  report the same numbers at epoch 0. Writes workdir/config.json and
  workdir/eval.json (step 0, no training time).
  """
  validate_config(config)
  workdir = workdir_lib.prepare(workdir)
  with workdir_lib.exclusive(workdir, 'evaluation of the untrained encoder',
                             enabled=jax.process_index() == 0):
    return _evaluate_init(config, workdir)


def _evaluate_init(config, workdir: str) -> Dict[str, Any]:
  mesh = sharding_lib.make_mesh()
  source, pair_set = load_pretraining_data(config, workdir)
  steps_per_epoch, total_steps = run_length(config, len(pair_set))
  *_, state = initial_state(config, mesh, source, steps_per_epoch,
                            total_steps)
  is_main = jax.process_index() == 0
  if is_main:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      json.dump(config.to_dict(), f, indent=2, sort_keys=True)
  evaluator = eval_lib.Evaluator(
      config.eval, sources_lib.resolve_data_dir(config.data.data_dir),
      config.data.image_size, config.model, mesh, seed=config.seed)
  t0 = time.time()
  results = evaluator(state_lib.encoder_variables(state))
  for r in results.values():
    r['step'] = 0
  report = {}
  if is_main:
    report = eval_lib.write_report(workdir, results, {
        'run': config.name, 'step': 0, 'epochs': 0.0, 'train_seconds': 0.0,
        'eval_seconds': round(time.time() - t0, 2),
        'skipped': evaluator.skipped})
  return report


def _finished_report(workdir, step, total_steps, config):
  """eval.json of a run that is complete and evaluated on every configured
  dataset at its last step, else None (so a rerun resumes or evaluates)."""
  path = os.path.join(workdir, 'eval.json')
  if step != total_steps or not os.path.exists(path):
    return None
  with open(path) as f:
    report = json.load(f)
  wanted = {eval_lib.result_key(name) for name, optional in
            eval_lib.parse_datasets(config.eval.datasets) if not optional}
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
    return _run(config, workdir, stop_after_step)


def _run(config, workdir: str, stop_after_step: int) -> Dict[str, Any]:
  """``run`` in a prepared workdir whose lock this process holds."""
  is_main = jax.process_index() == 0
  config_dict = config.to_dict()

  # --- Data.
  mesh = sharding_lib.make_mesh()
  sharding_lib.check_batch_size(config.batch_size, mesh)
  source, pair_set = load_pretraining_data(config, workdir)
  steps_per_epoch, total_steps = run_length(config, len(pair_set))
  batches = pipeline.train_batches(
      source, pair_set, config.data, config.batch_size, config.seed,
      jax.process_index(), jax.process_count())
  metrics_lib.say(
      f'Pretraining on {source.name} {source.split}: {len(source)} images, '
      f'{len(pair_set)} {config.data.pairs} pairs, {total_steps} steps of '
      f'{config.batch_size} pairs on {mesh.devices.size} device(s).')

  # --- Model, optimizer and state.
  method, schedule, tx, state = initial_state(
      config, mesh, source, steps_per_epoch, total_steps)

  checkpoints = checkpoint_lib.Checkpoints(workdir, config.keep_checkpoints)
  data_state, train_seconds, start = None, 0.0, 0
  restored = checkpoints.restore_latest_good(
      state, config_dict, workdir, restart=config.get('restart', False))
  if restored is not None:
    start, state, saved = restored
    data_state, train_seconds = saved['iterator'], saved['train_seconds']
    finished = _finished_report(workdir, start, total_steps, config)
    if finished is not None:
      metrics_lib.say(
          f'{workdir} is finished (step {start} of {total_steps}, evaluated); '
          'its results are in eval.json. To evaluate it again with other '
          'settings: python main.py --config=configs/linear_eval.py '
          f'--config.restore={workdir} [--config.eval.…].')
      checkpoints.close()
      return finished
    metrics_lib.say(f'Resumed {workdir} at step {start}.')
  if is_main:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      json.dump(config_dict, f, indent=2, sort_keys=True)

  data_sharding = sharding_lib.data_sharding(mesh)
  state_sharding = jax.tree.map(lambda x: x.sharding, state)
  train_step = jax.jit(
      make_train_step(method, tx, schedule, config.seed),
      in_shardings=(state_sharding, data_sharding),
      out_shardings=(state_sharding, sharding_lib.replicated(mesh)),
      donate_argnums=0)

  data_dir = sources_lib.resolve_data_dir(config.data.data_dir)
  evaluator = eval_lib.Evaluator(config.eval, data_dir, config.data.image_size,
                                 config.model, mesh, seed=config.seed)
  curve_steps = _curve_steps(config, steps_per_epoch, total_steps)
  curve_path = os.path.join(workdir, 'eval_curve.jsonl')
  if is_main:
    metrics_lib.truncate_jsonl(curve_path, start)

  last_curve = {}

  def evaluate_curve_point(step):
    results = evaluator(state_lib.encoder_variables(state))
    last_curve[step] = results
    row = {'step': step, 'epoch': curve_steps[step],
           'train_seconds': round(train_seconds, 2), 'results': results}
    if is_main:
      with open(curve_path, 'a') as f:
        f.write(json.dumps(row) + '\n')
      summary = ', '.join(f'{d} ' + '/'.join(
          f'{k}={v:.1f}' for k, v in r.items()
          if k.startswith(('knn@', 'probe')) and k not in (
              'probe_l2', 'probe_iterations')) for d, r in results.items())
      logger.message(f'epoch {curve_steps[step]:g} (step {step}): {summary}')
      for d, r in results.items():
        logger.scalars(step, f'eval/{d}', r)

  kill_in_save = int(os.environ.get(KILL_IN_SAVE_ENV, '0') or 0)

  def save(step):
    checkpoints.save(step, state, {'iterator': iterator.state(),
                                   'train_seconds': train_seconds},
                     config_dict)
    if step == kill_in_save:
      os.kill(os.getpid(), signal.SIGKILL)

  # --- Loop.
  refresh = None
  if getattr(pair_set, 'refresh_epochs', 0):
    refresh = refresh_lib.NeighbourRefresh(config, source, pair_set, workdir)
    if start < total_steps:
      refresh.ensure(start + 1, state)

  def make_iterator(position_state):
    return pipeline.DeviceIterator(
        batches, data_sharding, position_state,
        num_threads=config.data.num_workers, prefetch=config.data.prefetch)

  iterator = make_iterator(data_state)
  logger = metrics_lib.MetricsLogger(workdir, total_steps, start,
                                     config.batch_size,
                                     progress=config.progress and is_main,
                                     write_files=is_main)
  pending, first_pending = [], start + 1
  kill_at = int(os.environ.get(KILL_AT_STEP_ENV, '0') or 0)
  signals = _StopSignals()
  try:
    done = {r['step'] for r in metrics_lib.read_jsonl(curve_path)}
    if start in curve_steps and start not in done:
      evaluate_curve_point(start)
    t_last = time.time()
    for step in range(start + 1, total_steps + 1):
      if refresh is not None and refresh.ensure(step, state):
        iterator = make_iterator(iterator.state())  # Drop stale prefetches.
      state, m = train_step(state, next(iterator))
      pending.append(m)
      # A non-finite step stops the run at once, naming that step: its flag
      # is read one step late, after the next step is queued, so the check
      # never leaves the device idle.
      if len(pending) > 1 and int(pending[-2]['nonfinite']):
        logger.write(first_pending, jax.device_get(pending[:-1]))  # Raises.
      stopping = (signals.stop_now(step, config.log_every_steps) or
                  step == stop_after_step)
      boundary = (step % config.log_every_steps == 0 or step == total_steps or
                  step % config.checkpoint_every_steps == 0 or
                  step in curve_steps or stopping)
      if boundary:
        logger.write(first_pending, jax.device_get(pending))
        pending, first_pending = [], step + 1
        now = time.time()
        train_seconds += now - t_last
        if (step % config.checkpoint_every_steps == 0 or step == total_steps
            or stopping):
          save(step)
        if stopping:
          checkpoints.wait()
          cause = (f'by {signals.signal_name}' if signals.signal_name else
                   'as asked (stop_after_step)')
          raise Preempted(
              f'Stopped {cause} after step {step}; the '
              f'checkpoint is in {checkpoints.directory}/{step} — rerun the '
              'same command to resume.')
        if step in curve_steps:
          evaluate_curve_point(step)
        t_last = time.time()
      if step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
  finally:
    signals.restore()
    logger.close()
    checkpoints.close()

  # --- Final evaluation. Training is over and its checkpoint saved: a
  # SIGTERM or Ctrl-C now stops with the documented 75, and the rerun
  # evaluates.
  with _signals_raise_preempted(
      f'during the final evaluation; training is finished and checkpoint '
      f'{total_steps} is saved in {checkpoints.directory} — rerun the same '
      'command to evaluate it.'):
    t0 = time.time()
    if os.environ.get(PAUSE_BEFORE_EVAL_ENV) and is_main:
      open(os.path.join(workdir, 'final_eval_started'), 'w').close()
      time.sleep(60)
    last = total_steps
    # Decide from the config, not from files, so every process of a
    # multi-host run takes the same branch (the evaluator is a collective).
    if last in last_curve:
      results = last_curve[last]
    elif last in curve_steps:  # A finished run started again: all read it.
      results = [r for r in metrics_lib.read_jsonl(curve_path)
                 if r['step'] == last][0]['results']
    else:
      results = evaluator(state_lib.encoder_variables(state))
    for r in results.values():
      r['step'] = last
    report = {}
    if is_main:
      report = eval_lib.write_report(workdir, results, {
          'run': config.name, 'step': last, 'epochs': last / steps_per_epoch,
          'train_seconds': round(train_seconds, 2),
          'eval_seconds': round(time.time() - t0, 2),
          'skipped': evaluator.skipped})
  return report

