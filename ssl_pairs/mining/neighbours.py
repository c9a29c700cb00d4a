"""Exact k-nearest neighbours in blocks under jit, with bounded memory.

For every query the k closest keys by squared L2 distance (or by cosine
similarity) are found exactly. Queries are processed ``query_block`` at a time
and, for each block, the keys ``key_block`` at a time with a running top-k, so
peak memory is O(query_block × (key_block + k)) whatever the number of items —
never the N × N matrix. This is what the mined pair sources (GPS-SSL, SPPS)
build their neighbour tables with.

``backend='auto'`` uses faiss-cpu's exact flat index when it is installed: on
this 2-core CPU it built the CIFAR-10 table (50k × 768) 2.8× faster with half
the peak memory (BENCHMARKS.md, ``launch/knn_benchmark.py``); ``'jax'`` is the
blocked search above (on any accelerator), ``'faiss'`` requires faiss. Both
are exact; they may order exact ties differently.
"""

import functools
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from ssl_pairs.errors import UserError
from ssl_pairs.losses import l2_normalize

METRICS = ('l2', 'cosine')
BACKENDS = ('auto', 'jax', 'faiss')


def _faiss():
  try:
    import faiss  # pylint: disable=g-import-not-at-top
    return faiss
  except ImportError:
    return None


def _faiss_neighbours(x, y, k, metric, exclude_self):
  """Exact search with faiss's flat index; same contract as the jax path."""
  faiss = _faiss()
  if metric == 'cosine':
    x = np.ascontiguousarray(np.asarray(l2_normalize(x)), np.float32)
    y = x if y is None else np.ascontiguousarray(
        np.asarray(l2_normalize(y)), np.float32)
    index = faiss.IndexFlatIP(x.shape[1])
  else:
    x = np.ascontiguousarray(x, np.float32)
    y = x if y is None else np.ascontiguousarray(y, np.float32)
    index = faiss.IndexFlatL2(x.shape[1])
  index.add(y)
  values, indices = index.search(x, k + (1 if exclude_self else 0))
  if exclude_self:
    own = indices == np.arange(len(x))[:, None]
    # Drop the query itself where found, else the farthest extra neighbour.
    drop = np.where(own.any(1), own.argmax(1), k)
    keep = np.ones_like(own)
    keep[np.arange(len(x)), drop] = False
    indices = indices[keep].reshape(len(x), k)
    values = values[keep].reshape(len(x), k)
  if metric == 'l2':
    values = np.maximum(values, 0.0)
  return indices.astype(np.int64), values.astype(np.float32)


@functools.partial(jax.jit, static_argnames=('k', 'metric', 'exclude_self'))
def _block_topk(queries, query_ids, keys, key_ids, k: int, metric: str,
                exclude_self: bool):
  """Top-k of one query block over every key block ([nb, bk, d] keys)."""
  if metric == 'cosine':
    queries = l2_normalize(queries)
    keys = l2_normalize(keys)
  q_sq = jnp.sum(queries * queries, axis=1, keepdims=True)
  bq = queries.shape[0]
  init = (jnp.full((bq, k), -jnp.inf, jnp.float32),
          jnp.full((bq, k), -1, jnp.int32))

  def step(carry, block):
    best, best_ids = carry
    key_block, ids = block
    dots = queries @ key_block.T
    if metric == 'cosine':
      score = dots
    else:  # Negative squared distance: larger is closer.
      score = -(q_sq - 2.0 * dots + jnp.sum(key_block * key_block, axis=1))
    invalid = ids[None, :] < 0  # Padding.
    if exclude_self:
      invalid |= ids[None, :] == query_ids[:, None]
    score = jnp.where(invalid, -jnp.inf, score)
    merged = jnp.concatenate([best, score], axis=1)
    merged_ids = jnp.concatenate(
        [best_ids, jnp.broadcast_to(ids, score.shape)], axis=1)
    top, pos = jax.lax.top_k(merged, k)
    return (top, jnp.take_along_axis(merged_ids, pos, axis=1)), None

  (best, best_ids), _ = jax.lax.scan(step, init, (keys, key_ids))
  return best, best_ids


def nearest_neighbours(embeddings, k: int, metric: str = 'l2',
                       include_self: bool = False,
                       keys: Optional[np.ndarray] = None,
                       query_block: int = 1024, key_block: int = 8192,
                       progress: bool = False, backend: str = 'auto'
                       ) -> Tuple[np.ndarray, np.ndarray]:
  """Exact k nearest neighbours of every row of ``embeddings``.

  Args:
    embeddings: float [N, D] queries (and keys when ``keys`` is None).
    k: neighbours per query.
    metric: 'l2' (squared Euclidean, ascending) or 'cosine' (similarity,
      descending).
    include_self: when the keys are the queries, whether an item may be its
      own neighbour (it then comes first, at distance 0).
    keys: optional float [M, D] keys (default: the queries themselves).
    query_block, key_block: block sizes (memory ~ query_block × key_block).
    progress: show a progress bar over query blocks (jax backend).
    backend: 'auto' (faiss when installed, else jax), 'jax' or 'faiss'.

  Returns:
    (indices int64 [N, k], values float32 [N, k]): neighbour indices into the
    keys, closest first, and their squared distances ('l2') or cosine
    similarities ('cosine').
  """
  if metric not in METRICS:
    raise UserError(f'Unknown neighbour metric {metric!r}; choose one of: '
                    f'{", ".join(METRICS)}.')
  x = np.asarray(embeddings, np.float32)
  if x.ndim != 2:
    raise UserError(f'Embeddings must be a 2-D array [N, D], not shape '
                    f'{x.shape}.')
  same = keys is None
  y = x if same else np.asarray(keys, np.float32)
  available = len(y) - (1 if same and not include_self else 0)
  if not 0 < k <= available:
    raise UserError(f'k={k} neighbours asked for but only {available} '
                    'candidates exist per item; lower k.')
  if backend not in BACKENDS:
    raise UserError(f'Unknown neighbour backend {backend!r}; choose one of: '
                    f'{", ".join(BACKENDS)}.')
  if backend == 'faiss' and _faiss() is None:
    raise UserError("backend='faiss' needs faiss-cpu: pip install faiss-cpu, "
                    "or use backend='jax'.")
  if backend == 'faiss' or (backend == 'auto' and _faiss() is not None):
    return _faiss_neighbours(x, None if same else y, k, metric,
                             same and not include_self)
  key_block = min(key_block, len(y))
  n_blocks = -(-len(y) // key_block)
  pad = n_blocks * key_block - len(y)
  key_ids = np.concatenate([np.arange(len(y)), np.full(pad, -1)]).astype(
      np.int32)
  y = np.concatenate([y, np.zeros((pad, y.shape[1]), np.float32)])
  keys_dev = jnp.asarray(y.reshape(n_blocks, key_block, -1))
  ids_dev = jnp.asarray(key_ids.reshape(n_blocks, key_block))
  query_block = min(query_block, len(x))
  indices = np.empty((len(x), k), np.int64)
  values = np.empty((len(x), k), np.float32)
  starts = range(0, len(x), query_block)
  if progress:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    starts = tqdm(starts, desc='nearest neighbours', unit='block')
  for start in starts:
    stop = min(start + query_block, len(x))
    q = x[start:stop]
    if len(q) < query_block:  # Pad so the block compiles once.
      q = np.concatenate([q, np.zeros((query_block - len(q), x.shape[1]),
                                      np.float32)])
    q_ids = np.arange(start, start + query_block, dtype=np.int32)
    best, best_ids = _block_topk(jnp.asarray(q), jnp.asarray(q_ids), keys_dev,
                                 ids_dev, k, metric, same and not include_self)
    n = stop - start
    indices[start:stop] = np.asarray(best_ids)[:n]
    values[start:stop] = np.asarray(best)[:n]
  if metric == 'l2':
    values = np.maximum(-values, 0.0)
  return indices, values
