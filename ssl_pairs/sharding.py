"""Device mesh and shardings for global-view data parallelism.

One mesh axis, ``'data'``, over every device of every process. Batches are
split along it (``P('data')``); parameters and optimizer state are replicated
(``P()``). Code is written for the global batch under ``jax.jit``, and XLA
inserts the collectives: the contrastive similarity matrix spans the global
batch and BatchNorm statistics are global (sync-BN) without any explicit
``psum``. This replaces ``jax.pmap``, which is in maintenance mode.
"""

import jax
from jax.sharding import NamedSharding, PartitionSpec as P

from ssl_pairs.errors import UserError

DATA_AXIS = 'data'


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh over ``devices`` (default: all devices of all processes)."""
  devices = jax.devices() if devices is None else devices
  return jax.sharding.Mesh(devices, (DATA_AXIS,))


def data_sharding(mesh) -> NamedSharding:
  """Leading (batch) axis split over the mesh."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh) -> NamedSharding:
  """Full copy on every device."""
  return NamedSharding(mesh, P())


def check_batch_size(global_batch: int, mesh) -> None:
  """Fails early when the batch cannot be split evenly over the devices."""
  n = mesh.devices.size
  if global_batch <= 0 or global_batch % n:
    raise UserError(
        f'batch_size {global_batch} must be a positive multiple of the {n} '
        f'devices; use e.g. --config.batch_size={max(n, global_batch // n * n)}.')
