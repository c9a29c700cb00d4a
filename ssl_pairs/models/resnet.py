"""ResNet backbones (Flax Linen) with a CIFAR stem for 32–64 px inputs.

The structure follows torchvision's ResNet v1.5 (stride on the 3×3 conv of the
bottleneck) and flax's ``examples/imagenet/models.py``. The CIFAR stem (3×3 conv,
stride 1, no max-pool) is the default because the study trains at 32–64 px, where
the ImageNet stem (7×7 stride 2 + max-pool) throws away three quarters of the
resolution before the first block.
"""

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

ModuleDef = Any

# Parameter initialisations (``model.init``):
# * 'default' — He-normal (fan-out) convolution kernels with the last BatchNorm
#   scale of every residual block at zero (torchvision's ``zero_init_residual``,
#   Goyal et al. 2017), LeCun-normal dense kernels (flax's default);
# * 'pytorch' — PyTorch's default layer initialisation, U(±1/√fan_in) for
#   convolution and dense kernels (``kaiming_uniform_(a=√5)``) and every
#   BatchNorm scale at one: what a network built from plain ``torch.nn`` layers
#   starts from (lightly's ``ResNetGenerator``, most PyTorch SSL code). With
#   BatchNorm after every layer the function computed is scale-invariant in the
#   kernels, so the smaller kernels (6× less variance than He fan-out for a 3×3
#   convolution) act as a larger effective learning rate early in training.
INITS = ('default', 'pytorch')
TORCH_KERNEL_INIT = nn.initializers.variance_scaling(1.0 / 3, 'fan_in',
                                                     'uniform')

# Padding of the 3×3 convolutions and the stem's max-pool (``model.padding``):
# * 'same' — flax's 'SAME': a 3×3 stride-2 window over an even-sized input
#   pads (0, 1), one pixel at the bottom/right only (over an odd size, (1, 1)
#   as torch). What every checkpoint written before the option existed
#   computes, so it stays the default.
# * 'torch' — symmetric (1, 1) as torchvision's ResNet (``conv3x3``,
#   ``MaxPool2d(3, 2, padding=1)``): the same parameters compute the same
#   features as torchvision's network, so an export
#   (``ssl_pairs.tools.export``, docs/export.md) is exact.
# Stride-1 3×3 convolutions and 1×1 convolutions pad the same either way.
PADDINGS = ('same', 'torch')
_PAD3 = {'same': 'SAME', 'torch': ((1, 1), (1, 1))}


class BasicBlock(nn.Module):
  """Two 3×3 convolutions with a residual connection (ResNet-18/34)."""
  filters: int
  conv: ModuleDef
  norm: ModuleDef
  strides: int = 1
  zero_init_last: bool = True
  padding: Any = 'SAME'  # Of the (possibly strided) 3×3 convolutions.

  @nn.compact
  def __call__(self, x):
    residual = x
    y = self.conv(self.filters, (3, 3), (self.strides, self.strides),
                  padding=self.padding)(x)
    y = nn.relu(self.norm()(y))
    y = self.conv(self.filters, (3, 3), padding=self.padding)(y)
    # Zero-init the last BN scale of each block: the block starts as identity,
    # which stabilises large-batch training (Goyal et al. 2017).
    y = self.norm(scale_init=nn.initializers.zeros if self.zero_init_last
                  else nn.initializers.ones)(y)
    if residual.shape != y.shape:
      residual = self.conv(self.filters, (1, 1), (self.strides, self.strides),
                           name='conv_proj')(residual)
      residual = self.norm(name='norm_proj')(residual)
    return nn.relu(residual + y)


class BottleneckBlock(nn.Module):
  """1×1 → 3×3 (strided) → 1×1 bottleneck block (ResNet-50 and deeper)."""
  filters: int
  conv: ModuleDef
  norm: ModuleDef
  strides: int = 1
  zero_init_last: bool = True
  padding: Any = 'SAME'  # Of the (possibly strided) 3×3 convolutions.

  @nn.compact
  def __call__(self, x):
    residual = x
    y = nn.relu(self.norm()(self.conv(self.filters, (1, 1))(x)))
    y = self.conv(self.filters, (3, 3), (self.strides, self.strides),
                  padding=self.padding)(y)
    y = nn.relu(self.norm()(y))
    y = self.conv(self.filters * 4, (1, 1))(y)
    y = self.norm(scale_init=nn.initializers.zeros if self.zero_init_last
                  else nn.initializers.ones)(y)
    if residual.shape != y.shape:
      residual = self.conv(self.filters * 4, (1, 1),
                           (self.strides, self.strides),
                           name='conv_proj')(residual)
      residual = self.norm(name='norm_proj')(residual)
    return nn.relu(residual + y)


class ResNet(nn.Module):
  """ResNet returning the globally average-pooled features.

  Attributes:
    stage_sizes: number of blocks in each stage.
    block_cls: BasicBlock or BottleneckBlock.
    width: base number of filters of the first stage (64 for the standard nets;
      a width multiplier scales it).
    stem: 'cifar' (3×3 conv stride 1, no max-pool) or 'imagenet' (7×7 stride 2
      conv + 3×3 stride 2 max-pool).
    dtype: computation dtype (parameters stay float32).
    init_scheme: 'default' or 'pytorch' (see ``INITS``; ``model.init``).
    padding: 'same' or 'torch' (see ``PADDINGS``; ``model.padding``); the
      parameters are the same either way.
    remat: recompute each residual block's activations in the backward pass
      (``jax.checkpoint`` via ``nn.remat``; ``model.remat``): the same loss
      and gradients, with only the blocks' inputs kept for the backward — how
      the paper's ResNet-50 step fits in 80 GB.
  """
  stage_sizes: Sequence[int]
  block_cls: ModuleDef
  width: int = 64
  stem: str = 'cifar'
  dtype: Any = jnp.float32
  act: Callable = nn.relu
  init_scheme: str = 'default'
  remat: bool = False
  padding: str = 'same'

  @nn.compact
  def __call__(self, x, train: bool = True):
    if self.init_scheme not in INITS:
      raise ValueError(f'Unknown init {self.init_scheme!r}; use one of '
                       f'{INITS}.')
    if self.padding not in PADDINGS:
      raise ValueError(f'Unknown padding {self.padding!r}; use one of '
                       f'{PADDINGS}.')
    pad3 = _PAD3[self.padding]
    torch_init = self.init_scheme == 'pytorch'
    conv = functools.partial(
        nn.Conv, use_bias=False, dtype=self.dtype,
        kernel_init=TORCH_KERNEL_INIT if torch_init else
        nn.initializers.variance_scaling(2.0, 'fan_out', 'normal'))
    norm = functools.partial(nn.BatchNorm, use_running_average=not train,
                             momentum=0.9, epsilon=1e-5, dtype=self.dtype)
    x = x.astype(self.dtype)
    if self.stem == 'cifar':
      x = conv(self.width, (3, 3), name='conv_init')(x)
      x = nn.relu(norm(name='bn_init')(x))
    elif self.stem == 'imagenet':
      x = conv(self.width, (7, 7), (2, 2), padding=[(3, 3), (3, 3)],
               name='conv_init')(x)
      x = nn.relu(norm(name='bn_init')(x))
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=pad3)
    else:
      raise ValueError(f"Unknown stem {self.stem!r}; use 'cifar' or 'imagenet'.")
    # Named explicitly (as flax would name them), so parameters are the same
    # with and without remat and checkpoints restore either way.
    block_cls = nn.remat(self.block_cls) if self.remat else self.block_cls
    k = 0
    for i, block_size in enumerate(self.stage_sizes):
      for j in range(block_size):
        strides = 2 if i > 0 and j == 0 else 1
        x = block_cls(self.width * 2**i, strides=strides, conv=conv,
                      norm=norm, zero_init_last=not torch_init, padding=pad3,
                      name=f'{self.block_cls.__name__}_{k}')(x)
        k += 1
    # Pool in float32 so features handed to heads and evaluations are fp32.
    return jnp.mean(x.astype(jnp.float32), axis=(1, 2))


RESNET_STAGES = {
    'resnet_tiny': ((1, 1), BasicBlock),
    'resnet18': ((2, 2, 2, 2), BasicBlock),
    'resnet34': ((3, 4, 6, 3), BasicBlock),
    'resnet50': ((3, 4, 6, 3), BottleneckBlock),
    'resnet101': ((3, 4, 23, 3), BottleneckBlock),
}


def resnet(arch: str, width_multiplier: float = 1.0, stem: str = 'cifar',
           dtype: Any = jnp.float32, init: str = 'default',
           remat: bool = False, padding: str = 'same') -> ResNet:
  """Builds a ResNet by name; ``resnet_tiny`` (2 stages, base width 8) is for tests."""
  stages, block = RESNET_STAGES[arch]
  base = 8 if arch == 'resnet_tiny' else 64
  return ResNet(stage_sizes=stages, block_cls=block,
                width=max(1, int(round(base * width_multiplier))), stem=stem,
                dtype=dtype, init_scheme=init, remat=remat, padding=padding)


def feature_dim(arch: str, width_multiplier: float = 1.0) -> int:
  """Dimension of the pooled output of ``resnet(arch, width_multiplier)``."""
  stages, block = RESNET_STAGES[arch]
  base = 8 if arch == 'resnet_tiny' else 64
  width = max(1, int(round(base * width_multiplier)))
  expansion = 4 if block is BottleneckBlock else 1
  return width * 2**(len(stages) - 1) * expansion
