"""Backbones by name: ``get_backbone(model_config) -> (module, feature_dim)``."""

import jax.numpy as jnp

from ssl_pairs.errors import UserError, unknown_name_error
from ssl_pairs.models import resnet as resnet_lib
from ssl_pairs.models import vit as vit_lib

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def backbone_names():
  """Names accepted by ``config.model.arch``."""
  return sorted(resnet_lib.RESNET_STAGES) + sorted(vit_lib.VIT_SIZES)


def get_backbone(model_config):
  """Builds the encoder named by ``model_config.arch``.

  Args:
    model_config: ConfigDict with ``arch``, ``width_multiplier`` and ``stem``
      (ResNets), ``patch_size`` (ViTs) and ``dtype`` ('float32' or
      'bfloat16').

  Returns:
    (flax module mapping images [B, H, W, 3] to features [B, F], F).
  """
  arch = model_config.arch
  if model_config.dtype not in DTYPES:
    raise unknown_name_error('model.dtype', model_config.dtype, DTYPES)
  dtype = DTYPES[model_config.dtype]
  if arch in resnet_lib.RESNET_STAGES:
    if model_config.stem not in ('cifar', 'imagenet'):
      raise unknown_name_error('model.stem', model_config.stem,
                               ('cifar', 'imagenet'))
    init = model_config.get('init', 'default')
    if init not in resnet_lib.INITS:
      raise unknown_name_error('model.init', init, resnet_lib.INITS)
    padding = model_config.get('padding', 'same')
    if padding not in resnet_lib.PADDINGS:
      raise unknown_name_error('model.padding', padding, resnet_lib.PADDINGS)
    module = resnet_lib.resnet(arch, model_config.width_multiplier,
                               model_config.stem, dtype, init,
                               remat=model_config.get('remat', False),
                               padding=padding)
    return module, resnet_lib.feature_dim(arch, model_config.width_multiplier)
  if arch in vit_lib.VIT_SIZES:
    if model_config.get('init', 'default') != 'default':
      raise UserError(f"model.init={model_config.init!r} applies to ResNets "
                      f"only; drop it for {arch} (ViTs initialise as their "
                      "paper does).")
    if model_config.get('padding', 'same') != 'same':
      raise UserError(f"model.padding={model_config.padding!r} applies to "
                      f"ResNets only; drop it for {arch} (its patch embedding "
                      "has no padding).")
    patch = model_config.get('patch_size', 8)
    if patch not in (4, 8, 16):
      raise unknown_name_error('model.patch_size', str(patch), ('4', '8', '16'))
    return (vit_lib.vit(arch, patch, dtype, model_config.get('remat', False)),
            vit_lib.VIT_SIZES[arch][0])
  raise unknown_name_error('model.arch', arch, backbone_names())
