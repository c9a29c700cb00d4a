"""Weighted k-nearest-neighbour classification on cosine similarity.

As in Wu et al. 2018 / DINO: the k most similar training features vote for
their class with weight exp(similarity / τ); the prediction is the class with
the largest total vote.
"""

from typing import Dict, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ssl_pairs.losses import l2_normalize



def knn_predict(train_features, train_labels, test_features,
                num_classes: int, ks: Sequence[int] = (20, 200),
                temperature: float = 0.07,
                chunk: int = 512) -> Dict[int, np.ndarray]:
  """Predicted labels of every test feature for each k in ``ks``.

  Args:
    train_features: [N, F]; train_labels: int [N].
    test_features: [M, F].
    num_classes: number of classes.
    ks: neighbourhood sizes (each capped at N, keyed as requested).
    temperature: τ of the vote weights.
    chunk: test rows per similarity block (bounds memory to chunk × N).

  Returns:
    {k: int [M] predictions}.
  """
  train = l2_normalize(jnp.asarray(train_features, jnp.float32))
  labels = jnp.asarray(train_labels, jnp.int32)
  requested = [int(k) for k in ks]
  ks = [min(k, train.shape[0]) for k in requested]
  kmax = max(ks)

  @jax.jit
  def predict(block):
    sim = l2_normalize(block) @ train.T
    top_sim, top_idx = jax.lax.top_k(sim, kmax)
    votes = jax.nn.one_hot(labels[top_idx], num_classes) * jnp.exp(
        top_sim / temperature)[..., None]
    # Neighbours come sorted by similarity, so the first k are the k nearest.
    return [jnp.argmax(votes[:, :k].sum(1), axis=1) for k in ks]

  test = np.asarray(test_features, np.float32)
  preds = {k: [] for k in requested}
  for start in range(0, len(test), chunk):
    block = test[start:start + chunk]
    n = len(block)
    if n < chunk:
      block = np.concatenate([block, np.zeros((chunk - n, block.shape[1]),
                                              np.float32)])
    for k, p in zip(requested, predict(jnp.asarray(block))):
      preds[k].append(np.asarray(p)[:n])
  return {k: np.concatenate(v) for k, v in preds.items()}


def knn_accuracy(train_features, train_labels, test_features, test_labels,
                 num_classes: int, ks: Sequence[int] = (20, 200),
                 temperature: float = 0.07) -> Dict[int, float]:
  """Top-1 accuracy (%) of the weighted kNN classifier for each k."""
  preds = knn_predict(train_features, train_labels, test_features,
                      num_classes, ks, temperature)
  test_labels = np.asarray(test_labels)
  return {k: float(100.0 * np.mean(p == test_labels)) for k, p in preds.items()}
