"""Vision Transformer backbones (Flax Linen), as in DINO / big_vision.

Patch embedding (a conv with kernel = stride = patch size), a class token,
learned position embeddings, pre-norm encoder blocks, and a final LayerNorm;
the class token's output is the feature. ViT-S/8 at 64 px (64 tokens) is the
study's setting; patch sizes 4, 8 and 16 are all supported.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

# name: (width, depth, heads, MLP width)
VIT_SIZES = {
    'vit_test': (32, 2, 2, 64),
    'vit_tiny': (192, 12, 3, 768),
    'vit_small': (384, 12, 6, 1536),
    'vit_base': (768, 12, 12, 3072),
}


class EncoderBlock(nn.Module):
  """LayerNorm → self-attention → residual; LayerNorm → MLP → residual."""
  num_heads: int
  mlp_dim: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    y = nn.LayerNorm(dtype=self.dtype)(x)
    y = nn.MultiHeadDotProductAttention(num_heads=self.num_heads,
                                        dtype=self.dtype)(y, y)
    x = x + y
    y = nn.LayerNorm(dtype=self.dtype)(x)
    y = nn.Dense(self.mlp_dim, dtype=self.dtype)(y)
    y = nn.Dense(x.shape[-1], dtype=self.dtype)(nn.gelu(y))
    return x + y


def interpolate_pos_embedding(pos, h: int, w: int):
  """[1, 1 + g², C] embeddings → [1, 1 + h·w, C] (bicubic over the grid).

  Lets a ViT initialised at the global view size run on other sizes (DINO's
  local crops); identity when the grid already is h × w.
  """
  n, c = pos.shape[1] - 1, pos.shape[2]
  g = int(round(n ** 0.5))
  if g * g != n:
    raise ValueError(f'position embeddings for {n} patches are not a square '
                     'grid.')
  if (g, g) == (h, w):
    return pos
  grid = jax.image.resize(pos[:, 1:].reshape(1, g, g, c), (1, h, w, c),
                          method='bicubic')
  return jnp.concatenate([pos[:, :1], grid.reshape(1, h * w, c)], axis=1)


class ViT(nn.Module):
  """ViT returning the class token's final representation (float32)."""
  patch_size: int
  width: int
  depth: int
  num_heads: int
  mlp_dim: int
  dtype: Any = jnp.float32
  remat: bool = False  # Recompute each block's activations in the backward.

  @nn.compact
  def __call__(self, x, train: bool = True):
    del train  # No dropout or batch statistics.
    p = self.patch_size
    x = nn.Conv(self.width, (p, p), strides=(p, p), padding='VALID',
                dtype=self.dtype, name='patch_embed')(x.astype(self.dtype))
    b, h, w, c = x.shape
    x = x.reshape(b, h * w, c)
    cls = self.param('cls', nn.initializers.zeros, (1, 1, c))
    x = jnp.concatenate([jnp.tile(cls, (b, 1, 1)).astype(x.dtype), x], axis=1)
    if self.has_variable('params', 'pos_embedding'):
      pos = self.get_variable('params', 'pos_embedding')
    else:  # Initialisation: one embedding per patch of the init image.
      pos = self.param('pos_embedding', nn.initializers.normal(0.02),
                       (1, h * w + 1, c))
    x = x + interpolate_pos_embedding(pos, h, w).astype(x.dtype)
    block = nn.remat(EncoderBlock) if self.remat else EncoderBlock
    for i in range(self.depth):
      x = block(self.num_heads, self.mlp_dim, self.dtype, name=f'block{i}')(x)
    x = nn.LayerNorm(dtype=self.dtype, name='norm')(x)
    return x[:, 0].astype(jnp.float32)


def vit(arch: str, patch_size: int, dtype: Any = jnp.float32,
        remat: bool = False) -> ViT:
  """Builds a ViT by name (``vit_test`` is a 2-layer model for tests)."""
  width, depth, heads, mlp = VIT_SIZES[arch]
  return ViT(patch_size, width, depth, heads, mlp, dtype, remat)
