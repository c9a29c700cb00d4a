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
