"""The PyTorch yardstick of ``benchmark.py --compare_torch`` is our network.

A speed comparison only means something if both sides train the same network
on the same objective: these tests check the torch twin's parameter count
against the Flax model's, and its NT-Xent against ``losses.nt_xent``. They
need torch (an optional extra, not in requirements.txt) and skip without it.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, REPO)
from launch import torch_reference  # pylint: disable=wrong-import-position


def test_available_is_false_when_torch_cannot_be_imported(monkeypatch):
  monkeypatch.setitem(sys.modules, 'torch', None)  # import torch → ImportError
  assert not torch_reference.available()


def _flax_param_count(arch, width, hidden, out):
  from ssl_pairs.methods.base import EncoderWithHead
  from ssl_pairs.models import resnet
  from ssl_pairs.models.heads import MLPHead
  model = EncoderWithHead(resnet.resnet(arch, width),
                          MLPHead(hidden_dims=(hidden,), output_dim=out))
  shapes = jax.eval_shape(
      lambda: model.init(jax.random.key(0), jnp.zeros((2, 32, 32, 3)),
                         train=True))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes['params']))


@pytest.mark.parametrize('arch,width', [('resnet18', 0.25), ('resnet18', 1.0),
                                        ('resnet50', 0.125)])
def test_torch_twin_has_exactly_our_parameters(arch, width):
  pytest.importorskip('torch')
  model = torch_reference.build(arch, width, 64, 16)
  torch_count = sum(p.numel() for p in model.parameters())
  assert torch_count == _flax_param_count(arch, width, 64, 16)


def test_torch_nt_xent_equals_ours():
  torch = pytest.importorskip('torch')
  from ssl_pairs import losses
  z = np.random.default_rng(0).normal(size=(12, 8)).astype(np.float32)
  ids = np.concatenate([np.arange(6), np.arange(6)])
  ours = float(losses.nt_xent(jnp.asarray(z), jnp.asarray(ids), 0.2))
  theirs = float(torch_reference.nt_xent(torch.from_numpy(z), 0.2))
  np.testing.assert_allclose(theirs, ours, rtol=1e-5)


def test_torch_step_learns_a_fixed_batch():
  pytest.importorskip('torch')
  import importlib
  config = importlib.import_module('configs.simclr_sp').get_config('smoke')
  config.model.arch = 'resnet18'
  config.model.width_multiplier = 0.125
  step = torch_reference.SimCLRStep(config, lr=0.05)
  rng = np.random.default_rng(0)
  v1 = rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
  v2 = np.clip(v1.astype(int) + rng.integers(-20, 20, v1.shape), 0,
               255).astype(np.uint8)
  losses = [step(v1, v2) for _ in range(15)]
  assert np.all(np.isfinite(losses))
  assert losses[-1] < losses[0] - 0.1, losses
