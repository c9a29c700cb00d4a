"""Projection and prediction heads (Flax Linen)."""

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ssl_pairs.models.resnet import INITS, TORCH_KERNEL_INIT


def dense(features: int, fan_in: int, init: str, dtype) -> nn.Dense:
  """A Dense layer initialised as flax does ('default') or as torch.nn.Linear
  does ('pytorch': kernel and bias both U(±1/√fan_in))."""
  if init not in INITS:
    raise ValueError(f'Unknown init {init!r}; use one of {INITS}.')
  if init == 'default':
    return nn.Dense(features, dtype=dtype)
  bound = 1.0 / math.sqrt(fan_in)

  def bias_init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return nn.Dense(features, dtype=dtype, kernel_init=TORCH_KERNEL_INIT,
                  bias_init=bias_init)


class MLPHead(nn.Module):
  """Linear → (BN → ReLU → Linear)* head, as SimCLR/BYOL/VICReg projectors.

  Attributes:
    hidden_dims: widths of the hidden layers, each followed by BatchNorm and ReLU.
    output_dim: width of the final linear layer.
    last_bn: add a BatchNorm without affine parameters after the last layer
      (SimCLR v2 / MoCo v3 style); off by default.
    dtype: computation dtype; the output is returned in float32.
    init_scheme: 'default' (flax) or 'pytorch' (torch.nn.Linear's);
      ``model.init``.
  """
  hidden_dims: Sequence[int]
  output_dim: int
  last_bn: bool = False
  dtype: Any = jnp.float32
  init_scheme: str = 'default'

  @nn.compact
  def __call__(self, x, train: bool = True):
    x = x.astype(self.dtype)
    for width in self.hidden_dims:
      x = dense(width, x.shape[-1], self.init_scheme, self.dtype)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                       epsilon=1e-5, dtype=self.dtype)(x)
      x = nn.relu(x)
    x = dense(self.output_dim, x.shape[-1], self.init_scheme, self.dtype)(x)
    if self.last_bn:
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                       epsilon=1e-5, use_scale=False, use_bias=False,
                       dtype=self.dtype)(x)
    return x.astype(jnp.float32)


class LinearHead(nn.Module):
  """A single linear layer (classifier, PIRL's f) that accepts ``train``."""
  output_dim: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    del train
    return nn.Dense(self.output_dim, dtype=self.dtype)(
        x.astype(self.dtype)).astype(jnp.float32)


class DINOHead(nn.Module):
  """DINO's head: 3-layer GELU MLP → L2 norm → weight-normalised linear.

  As the reference code's ``DINOHead`` (facebookresearch/dino
  ``vision_transformer.py``; solo-learn's is the same), with exact GELU and,
  with ``use_bn`` (``use_bn_in_head``), BatchNorm after each hidden Linear.
  One departure: the MLP keeps flax's LeCun-normal init instead of the
  reference's truncated normal of std 0.02. That init suits the reference's
  384–2048-wide inputs; on our narrow backbones (128 features at width 1/4)
  it makes the MLP nearly linear and strongly contracting, and DINO fell onto
  the uniform plateau at once (one batch, K=64: teacher entropy ln K by step
  40, against 1.6 with LeCun init). The last layer's weight is normalised per output column with its
  scale fixed to 1 (``norm_last_layer=True``); its parameter is named
  ``last_layer`` so the method can freeze it during the first epoch.
  """
  hidden_dim: int = 2048
  bottleneck_dim: int = 256
  output_dim: int = 4096
  use_bn: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    x = x.astype(self.dtype)
    init = dict(dtype=self.dtype)
    for _ in range(2):
      x = nn.Dense(self.hidden_dim, **init)(x)
      if self.use_bn:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                         epsilon=1e-5, dtype=self.dtype)(x)
      x = nn.gelu(x, approximate=False)
    x = nn.Dense(self.bottleneck_dim, **init)(x).astype(jnp.float32)
    x = x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    v = self.param('last_layer', nn.initializers.truncated_normal(0.02),
                   (self.bottleneck_dim, self.output_dim))
    w = v / jnp.maximum(jnp.linalg.norm(v, axis=0, keepdims=True), 1e-12)
    return x @ w
