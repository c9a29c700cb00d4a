"""Optimizers and learning-rate schedules (optax).

The learning rate is ``base_lr × global_batch / 256`` (linear scaling), with a
linear warmup followed by a cosine decay to 0, evaluated per step. LARS uses
optax's masks so that biases and normalisation parameters (every parameter with
fewer than 2 dimensions) get neither weight decay nor the trust ratio — the rule
SimCLR/BYOL use; SGD and AdamW skip weight decay on the same parameters.
``bias_lr_factor`` multiplies the learning rate of those same parameters (the
Barlow Twins paper trains them at 0.0048 / 0.2 = 0.024 of the weights' rate);
at its default 1.0 the optimizer and its state are exactly the unfactored ones.
"""

import jax
import optax

from ssl_pairs.errors import UserError, unknown_name_error

OPTIMIZERS = ('lars', 'sgd', 'adamw')


def decay_mask(params):
  """True for weights (ndim ≥ 2), False for biases and norm scales/offsets."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


def bias_mask(params):
  """True for biases and norm scales/offsets (ndim < 2): not decay_mask."""
  return jax.tree.map(lambda p: p.ndim < 2, params)


def learning_rate_schedule(optim_config, total_steps: int,
                           steps_per_epoch: float, global_batch: int):
  """Warmup + cosine schedule with the linearly scaled peak learning rate."""
  peak = optim_config.base_lr * global_batch / 256
  warmup = int(round(optim_config.warmup_epochs * steps_per_epoch))
  warmup = min(warmup, max(total_steps - 1, 0))
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0 if warmup else peak, peak_value=peak,
      warmup_steps=warmup, decay_steps=max(total_steps, warmup + 1),
      end_value=0.0)


def make_optimizer(optim_config, schedule) -> optax.GradientTransformation:
  """The optimizer named by ``optim_config.name`` following ``schedule``."""
  tx = _base_optimizer(optim_config, schedule)
  factor = optim_config.get('bias_lr_factor', 1.0)
  if not factor > 0:
    raise UserError(f'optim.bias_lr_factor={factor} must be positive; 1.0 '
                    'trains biases and norm parameters at the full rate.')
  if factor == 1.0:
    return tx
  # These parameters' updates are lr × a direction, with no trust ratio or
  # weight decay, so scaling the update scales their learning rate.
  return optax.chain(tx, optax.masked(optax.scale(factor), bias_mask))


def _base_optimizer(optim_config, schedule) -> optax.GradientTransformation:
  name, wd = optim_config.name, optim_config.weight_decay
  if wd < 0 or optim_config.base_lr <= 0:
    raise UserError(f'optim.base_lr={optim_config.base_lr} must be positive and '
                    f'optim.weight_decay={wd} non-negative.')
  if name == 'lars':
    return optax.lars(schedule, weight_decay=wd, weight_decay_mask=decay_mask,
                      trust_ratio_mask=decay_mask,
                      trust_coefficient=optim_config.trust_coefficient,
                      momentum=optim_config.momentum)
  if name == 'sgd':
    return optax.chain(optax.add_decayed_weights(wd, decay_mask),
                       optax.sgd(schedule, momentum=optim_config.momentum))
  if name == 'adamw':
    return optax.adamw(schedule, weight_decay=wd, mask=decay_mask)
  raise unknown_name_error('optimizer (optim.name)', name, OPTIMIZERS)
