"""Backbones: shapes, feature sizes, and parameter counts of known networks."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ssl_pairs import models
from ssl_pairs.errors import UserError
from ssl_pairs.models import resnet


def count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize('arch,expected', [
    # torchvision resnet18/50 parameter counts (11,689,512 / 25,557,032) minus
    # the 1000-way fc layer, with the 7×7 stem conv (9,408) replaced by the
    # CIFAR stem's 3×3 conv (1,728).
    ('resnet18', 11_689_512 - 513_000 - 9_408 + 1_728),
    ('resnet50', 25_557_032 - 2_049_000 - 9_408 + 1_728),
])
def test_parameter_counts_match_torchvision(arch, expected):
  net = resnet.resnet(arch)
  shapes = jax.eval_shape(net.init, jax.random.key(0),
                          jnp.zeros((1, 32, 32, 3)))
  assert count(shapes['params']) == expected


@pytest.mark.parametrize('stem,size', [('cifar', 32), ('imagenet', 64)])
def test_feature_shapes_and_width_multiplier(stem, size):
  cfg = ml_collections.ConfigDict(dict(arch='resnet18', width_multiplier=0.25,
                                       stem=stem, dtype='float32'))
  net, dim = models.get_backbone(cfg)
  assert dim == 128
  x = jnp.ones((2, size, size, 3))
  variables = net.init(jax.random.key(0), x)
  out = net.apply(variables, x, train=False)
  assert out.shape == (2, 128) and out.dtype == jnp.float32


def test_bfloat16_compute_keeps_float32_params_and_features():
  cfg = ml_collections.ConfigDict(dict(arch='resnet_tiny', width_multiplier=1.0,
                                       stem='cifar', dtype='bfloat16'))
  net, _ = models.get_backbone(cfg)
  x = jnp.ones((2, 16, 16, 3))
  variables = net.init(jax.random.key(0), x)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  assert net.apply(variables, x, train=False).dtype == jnp.float32


def test_unknown_arch_lists_the_valid_ones():
  cfg = ml_collections.ConfigDict(dict(arch='resnet9', width_multiplier=1.0,
                                       stem='cifar', dtype='float32'))
  with pytest.raises(UserError, match='resnet18, resnet34, resnet50'):
    models.get_backbone(cfg)


def _kernels(tree, name):
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return [(jax.tree_util.keystr(p), np.asarray(v)) for p, v in flat
          if jax.tree_util.keystr(p).endswith(f"['{name}']")]


def test_pytorch_init_matches_torch_nn_defaults():
  """model.init='pytorch': U(±1/√fan_in) kernels, every BN scale at one."""
  x = jnp.zeros((1, 32, 32, 3))
  params = resnet.resnet('resnet18', 0.5, init='pytorch').init(
      jax.random.key(0), x)['params']
  convs = _kernels(params, 'kernel')
  assert len(convs) == 20  # 1 stem + 16 block convs + 3 projections.
  for path, k in convs:
    fan_in = int(np.prod(k.shape[:-1]))
    bound = 1 / np.sqrt(fan_in)
    assert np.abs(k).max() <= bound * (1 + 1e-6), path  # fp32 rounding.
    if k.size >= 20_000:  # Enough draws for the variance to be within 5 %.
      assert abs(k.var() / (bound**2 / 3) - 1) < 0.05, path
  assert all(np.all(s == 1) for _, s in _kernels(params, 'scale'))
  # The default: He fan-out kernels and the last BN of each block at zero.
  default = resnet.resnet('resnet18', 0.5).init(jax.random.key(0), x)['params']
  k = default['BasicBlock_7']['Conv_1']['kernel']  # 3×3, 256 → 256.
  assert abs(k.var() / (2 / (9 * 256)) - 1) < 0.05
  zero = [p for p, s in _kernels(default, 'scale') if np.all(s == 0)]
  assert len(zero) == 8 and all('BatchNorm_1' in p for p in zero)


def test_pytorch_init_of_heads_and_unknown_init_name():
  from ssl_pairs.models.heads import MLPHead  # pylint: disable=g-import-not-at-top
  params = MLPHead((512,), 128, init_scheme='pytorch').init(
      jax.random.key(1), jnp.zeros((2, 256)))['params']
  for layer, fan_in in (('Dense_0', 256), ('Dense_1', 512)):
    bound = 1 / np.sqrt(fan_in)
    k, b = params[layer]['kernel'], params[layer]['bias']
    assert max(np.abs(k).max(), np.abs(b).max()) <= bound * (1 + 1e-6)
    assert np.abs(b).max() > 0.9 * bound  # Biases drawn, not zero.
    assert abs(float(k.var()) / (bound**2 / 3) - 1) < 0.05
  cfg = ml_collections.ConfigDict(dict(arch='resnet18', width_multiplier=0.25,
                                       stem='cifar', dtype='float32',
                                       init='torch'))
  with pytest.raises(UserError, match='default, pytorch'):
    models.get_backbone(cfg)
  cfg.arch, cfg.init = 'vit_tiny', 'pytorch'
  with pytest.raises(UserError, match='applies to ResNets only'):
    models.get_backbone(cfg)
