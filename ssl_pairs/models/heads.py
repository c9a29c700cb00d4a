"""Projection and prediction heads (Flax Linen)."""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp


class MLPHead(nn.Module):
  """Linear → (BN → ReLU → Linear)* head, as SimCLR/BYOL/VICReg projectors.

  Attributes:
    hidden_dims: widths of the hidden layers, each followed by BatchNorm and ReLU.
    output_dim: width of the final linear layer.
    last_bn: add a BatchNorm without affine parameters after the last layer
      (SimCLR v2 / MoCo v3 style); off by default.
    dtype: computation dtype; the output is returned in float32.
  """
  hidden_dims: Sequence[int]
  output_dim: int
  last_bn: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    x = x.astype(self.dtype)
    for width in self.hidden_dims:
      x = nn.Dense(width, dtype=self.dtype)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                       epsilon=1e-5, dtype=self.dtype)(x)
      x = nn.relu(x)
    x = nn.Dense(self.output_dim, dtype=self.dtype)(x)
    if self.last_bn:
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                       epsilon=1e-5, use_scale=False, use_bias=False,
                       dtype=self.dtype)(x)
    return x.astype(jnp.float32)
