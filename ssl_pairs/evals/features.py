"""Frozen-encoder features, extracted in batches under jit on all devices."""

from typing import Callable

import jax
from jax.experimental import multihost_utils
import numpy as np

from ssl_pairs import sharding as sharding_lib
from ssl_pairs.images import normalize_images
from ssl_pairs.models import DTYPES


def make_feature_fn(backbone, mesh, dtype: str = 'float32') -> Callable:
  """jit(fn(variables, uint8 images) -> pooled features), batch split on mesh.

  Features are the pooled backbone output in eval mode (BatchNorm running
  statistics), on the un-augmented image (docs/evaluation.md).
  """
  compute_dtype = DTYPES[dtype]

  def features(variables, images):
    return backbone.apply(variables, normalize_images(images, compute_dtype),
                          train=False)

  data = sharding_lib.data_sharding(mesh)
  return jax.jit(features, in_shardings=(sharding_lib.replicated(mesh), data),
                 out_shardings=data)


def extract_features(feature_fn: Callable, variables, source,
                     batch_size: int, mesh) -> np.ndarray:
  """float32 [len(source), F] features of every image of ``source``.

  The last batch is padded to ``batch_size`` (rounded up to a multiple of the
  device count) so the function compiles once. With several processes, each
  feeds its rows of every batch and the features are gathered on all of them.
  """
  n_dev = mesh.devices.size
  batch_size = -(-batch_size // n_dev) * n_dev
  n_proc, proc = jax.process_count(), jax.process_index()
  rows = slice(proc * batch_size // n_proc, (proc + 1) * batch_size // n_proc)
  variables = jax.device_put(variables, sharding_lib.replicated(mesh))
  data = sharding_lib.data_sharding(mesh)

  def to_host(features):
    if n_proc > 1:
      return np.asarray(multihost_utils.process_allgather(features, tiled=True))
    return np.asarray(features)

  out, pending = [], None
  for start in range(0, len(source), batch_size):
    idx = np.arange(start, min(start + batch_size, len(source)))
    images = source.gather(idx)
    if len(idx) < batch_size:
      pad = np.zeros((batch_size - len(idx),) + images.shape[1:], images.dtype)
      images = np.concatenate([images, pad])
    feats = feature_fn(variables, jax.make_array_from_process_local_data(
        data, images[rows]))
    # Fetch the previous batch while this one computes.
    if pending is not None:
      out.append(to_host(pending[0])[:pending[1]])
    pending = (feats, len(idx))
  if pending is not None:
    out.append(to_host(pending[0])[:pending[1]])
  return np.concatenate(out).astype(np.float32)


class _Images:
  """The minimal source ``extract_features`` reads: an in-memory array."""

  def __init__(self, x):
    self.x = x

  def __len__(self):
    return len(self.x)

  def gather(self, idx):
    return self.x[idx]


def encoder_features_fn(backbone, batch_size: int = 256):
  """fn(variables, uint8 images [M, S, S, 3]) → float32 pooled features
  [M, D], extracted in batches under jit on all devices; the feature step is
  built once, so repeated calls (refreshes, several set builders) reuse it."""
  mesh = sharding_lib.make_mesh()
  fn = make_feature_fn(backbone, mesh)
  return lambda variables, images: extract_features(
      fn, variables, _Images(images), batch_size, mesh)
