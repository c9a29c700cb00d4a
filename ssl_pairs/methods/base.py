"""What every method shares: the Method interface and the collapse monitor."""

import abc
from typing import Any, Dict, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from ssl_pairs.models import get_backbone


class EncoderWithHead(nn.Module):
  """Backbone followed by a head; returns (features, head output).

  The submodule names ``backbone`` and ``head`` fix the layout of params and
  batch_stats, so evaluation can restore ``params['backbone']`` alone.
  """
  backbone: nn.Module
  head: nn.Module

  def __call__(self, x, train: bool = True):
    features = self.backbone(x, train=train)
    return features, self.head(features, train=train)


def collapse_metrics(z) -> Dict[str, jnp.ndarray]:
  """Collapse monitor for a batch of embeddings z [M, D].

  Returns:
    'embed_std': mean over dimensions of the batch std of the L2-normalised
      embeddings (1/sqrt(D) for a uniform spread on the sphere, 0 when
      collapsed; Chen & He 2021);
    'embed_rank': effective rank exp(H(σ/Σσ)) of the centred batch
      (RankMe, Garrido et al. 2023); 1 when every embedding is the same
      direction, up to min(M, D).
  """
  z = jax.lax.stop_gradient(z.astype(jnp.float32))
  zn = z / jnp.maximum(jnp.linalg.norm(z, axis=1, keepdims=True), 1e-12)
  s = jnp.linalg.svd(z - z.mean(0), compute_uv=False)
  p = s / jnp.maximum(s.sum(), 1e-12) + 1e-7
  return {'embed_std': zn.std(0).mean(),
          'embed_rank': jnp.exp(-(p * jnp.log(p)).sum())}


class Method(abc.ABC):
  """A self-supervised (or supervised) method.

  Subclasses define ``build`` (the network, with a ``backbone`` submodule) and
  ``loss``; methods with state beyond params/batch_stats also override
  ``init_method_state`` and ``after_update``. Everything is pure: ``loss`` and
  ``after_update`` run inside the one jitted train step.
  """
  name = ''

  def __init__(self, config):
    self.config = config
    self.backbone, self.feature_dim = get_backbone(config.model)
    self.net = self.build()

  @abc.abstractmethod
  def build(self) -> nn.Module:
    """The network: a module with a ``backbone`` submodule."""

  def init_variables(self, rng, images) -> Dict[str, Any]:
    """{'params': ..., 'batch_stats': ...} for sample images [B, S, S, 3]."""
    variables = self.net.init(rng, images, train=True)
    return {'params': variables['params'],
            'batch_stats': variables.get('batch_stats', {})}

  def init_method_state(self, rng, variables) -> Any:
    del rng, variables
    return {}

  @abc.abstractmethod
  def loss(self, params, batch_stats, method_state, batch, rng,
           step) -> Tuple[jnp.ndarray, Tuple[Any, Dict[str, jnp.ndarray]]]:
    """(loss, (new batch_stats, metrics)) for a normalised batch."""

  def after_update(self, state):
    """Updates method_state after the optimizer step (EMA, queue...)."""
    return state
