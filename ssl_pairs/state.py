"""The train state: one pytree holding everything a step reads and writes."""

from typing import Any, Dict

import flax.struct
import jax.numpy as jnp


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training, as a pytree.

  Attributes:
    step: int32 scalar, number of optimizer updates done.
    params: trainable parameters ({'backbone': ..., <heads>: ...}).
    batch_stats: BatchNorm running statistics, same top-level keys.
    opt_state: optax state.
    method_state: method-specific arrays updated inside the step (EMA
      teacher, queue, centre, memory bank); {} for SimCLR.
  """
  step: jnp.ndarray
  params: Any
  batch_stats: Any
  opt_state: Any
  method_state: Any


def encoder_variables(state: TrainState) -> Dict[str, Any]:
  """The backbone's params and batch stats (what evaluation needs)."""
  return {'params': state.params['backbone'],
          'batch_stats': state.batch_stats.get('backbone', {})}
