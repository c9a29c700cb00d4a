"""The train step: one pure function ``(state, batch) -> (state, metrics)``.

It is jitted once per run with the state donated. Randomness comes from
``fold_in(key(seed), state.step)``, so a resumed run draws the same numbers at
the same step. A step whose loss or gradients are not finite leaves the state
untouched and reports ``nonfinite=1``; the loop stops on it (naming the step)
so no NaN ever reaches a checkpoint.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from ssl_pairs import online_probe
from ssl_pairs.data import device_augment
from ssl_pairs.images import normalize_images
from ssl_pairs.models import DTYPES
from ssl_pairs import state as state_lib
from ssl_pairs.state import TrainState

VIEW_KEYS = ('view1', 'view2')


def make_train_step(method, tx: optax.GradientTransformation,
                    schedule: Callable, seed: int):
  """Builds the (un-jitted) train step for ``method``.

  Args:
    method: a :class:`ssl_pairs.methods.Method`.
    tx: optax optimizer.
    schedule: learning-rate schedule (logged only).
    seed: run seed; the step's key is ``fold_in(key(seed), step)``.

  Returns:
    train_step(state, batch) -> (state, metrics dict of scalars). ``batch``
    holds uint8 views [B, S, S, 3] (normalised here, on the device), 'label'
    and 'index' — or, with ``data.augment_on='device'``, the raw pair images
    that :class:`device_augment.DeviceAugmenter` turns into views first.
  """
  dtype = DTYPES[method.config.model.dtype]
  augmenter = device_augment.maybe_augmenter(method.config)
  probe_on = online_probe.enabled(method.config)

  def train_step(state: TrainState, batch):
    probe_state = None
    if probe_on:  # The method sees (and keeps) its own state only.
      probe_state = state.method_state[online_probe.KEY]
      state = state.replace(method_state={
          k: v for k, v in state.method_state.items()
          if k != online_probe.KEY})
    rng = jax.random.fold_in(jax.random.key(seed), state.step)
    if augmenter is not None:  # Raw pair images → views, here on the device.
      batch = augmenter(batch)
    inputs = dict(batch)
    for k in VIEW_KEYS + ('local', 'positives'):
      if k in batch:
        inputs[k] = normalize_images(batch[k], dtype)

    def loss_fn(params):
      return method.loss(params, state.batch_stats, state.method_state, inputs,
                         rng, state.step)

    (loss, (batch_stats, metrics, extras)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    grads = method.transform_grads(grads, state.step)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(
        step=state.step + 1, params=optax.apply_updates(state.params, updates),
        batch_stats=batch_stats, opt_state=opt_state)
    new_state = method.after_update(state, new_state, extras)
    grad_norm = optax.global_norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    # Keep the old state on a non-finite step (only the step counter is not
    # advanced either): the loop reports the step and stops.
    new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old),
                             new_state, state)
    metrics = dict(metrics, loss=loss, grad_norm=grad_norm,
                   lr=schedule(state.step),
                   nonfinite=(~finite).astype(jnp.int32))
    if probe_on:  # On the evaluation's features of the anchor view.
      features = method.backbone.apply(
          state_lib.encoder_variables(state), inputs['view1'], train=False)
      probe_state, probe_metrics = online_probe.update(
          probe_state, features, batch['label'], finite)
      new_state = new_state.replace(method_state=dict(
          new_state.method_state, **{online_probe.KEY: probe_state}))
      metrics.update(probe_metrics)
    return new_state, metrics

  return train_step
