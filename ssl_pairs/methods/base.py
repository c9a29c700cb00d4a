"""What every method shares: the Method interface, run info, EMA, collapse monitor."""

import abc
import dataclasses
import math
from typing import Any, Dict, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from ssl_pairs.errors import UserError
from ssl_pairs.models import get_backbone


@dataclasses.dataclass(frozen=True)
class RunInfo:
  """Facts about the run a method's schedules and state depend on.

  Attributes:
    total_steps: optimizer steps of the whole run (EMA / temperature
      schedules).
    steps_per_epoch: steps per pass over the pairs (DINO's frozen last layer).
    num_images: images in the pretraining source (PIRL's memory bank).
    num_classes: classes of the pretraining source (supervised baseline).
  """
  total_steps: int = 1000
  steps_per_epoch: float = 100.0
  num_images: int = 1000
  num_classes: int = 10


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


def cosine_ema_momentum(base: float, step, total_steps: int):
  """τ_k = 1 − (1 − τ_base)·(cos(πk/K) + 1)/2: from τ_base up to 1 (BYOL)."""
  progress = jnp.minimum(step / max(total_steps, 1), 1.0)
  return 1.0 - (1.0 - base) * (jnp.cos(math.pi * progress) + 1.0) / 2.0


def ema(target, online, momentum):
  """momentum·target + (1 − momentum)·online, leaf by leaf."""
  return jax.tree.map(lambda t, o: momentum * t + (1.0 - momentum) * o,
                      target, online)


class Method(abc.ABC):
  """A self-supervised (or supervised) method.

  Subclasses define ``build`` (the network, with a ``backbone`` submodule) and
  ``loss``; methods with state beyond params/batch_stats (EMA teacher, queue,
  centre, memory bank) also override ``init_method_state`` and
  ``after_update``. Everything is pure and runs inside the one jitted step.
  """
  name = ''
  # {method.* key: what it sets}: the settings the method reads; any other
  # key under ``method`` is refused (it would be silently ignored).
  KEYS: Dict[str, str] = {}

  def __init__(self, config, run: RunInfo = RunInfo()):
    unknown = sorted(set(config.method) - {'name'} - set(self.KEYS))
    if unknown:
      valid = ', '.join(sorted(self.KEYS)) or 'none'
      raise UserError(
          f'method.{unknown[0]} is not a setting of {self.name}; its '
          f'settings are: {valid} (configs/{self.name}.py documents them).')
    self.config = config
    self.run = run
    self.backbone, self.feature_dim = get_backbone(config.model)
    # Heads start as the backbone does (``model.init``; validated above).
    self.head_init = config.model.get('init', 'default')
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
    """Arrays the method carries between steps (default: none)."""
    del rng, variables
    return {}

  @abc.abstractmethod
  def loss(self, params, batch_stats, method_state, batch, rng, step
           ) -> Tuple[jnp.ndarray, Tuple[Any, Dict[str, jnp.ndarray], Any]]:
    """(loss, (new batch_stats, metrics, extras)) for a normalised batch.

    ``extras`` (any pytree, {} if unused) is handed to ``after_update``: keys
    to enqueue, embeddings for a memory bank, teacher outputs for a centre.
    """

  def transform_grads(self, grads, step):
    """Gradients before the optimizer (DINO zeroes its frozen layer's)."""
    del step
    return grads

  def after_update(self, old_state, new_state, extras):
    """new_state after the optimizer step, with method_state updated."""
    del old_state, extras
    return new_state

  def apply(self, params, batch_stats, x, train=True):
    """Runs ``self.net``; returns (outputs, new batch_stats)."""
    out, updates = self.net.apply(
        {'params': params, 'batch_stats': batch_stats}, x, train=train,
        mutable=['batch_stats'])
    return out, updates['batch_stats']

  def apply_in_groups(self, params, batch_stats, x, groups: int):
    """``apply`` (training mode) with BatchNorm statistics computed separately
    over ``groups`` equal runs of consecutive samples — what each of ``groups``
    devices sees without sync-BN. The new running statistics are the groups'
    mean. ``groups=1`` is ``apply``."""
    if groups == 1:
      return self.apply(params, batch_stats, x)
    n = x.shape[0]
    out, stats = jax.vmap(lambda xg: self.apply(params, batch_stats, xg))(
        x.reshape((groups, n // groups) + x.shape[1:]))
    return (jax.tree.map(lambda o: o.reshape((n,) + o.shape[2:]), out),
            jax.tree.map(lambda s: s.mean(0), stats))
