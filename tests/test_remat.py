"""model.remat recomputes activations in the backward pass: same numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import load_config
from ssl_pairs import optim
from ssl_pairs.images import normalize_images
from ssl_pairs.methods import RunInfo, get_method
from ssl_pairs.train import create_state
from ssl_pairs import sharding
from test_methods import fixed_batch


@pytest.mark.parametrize('name,arch', [('simclr_sp', 'resnet_tiny'),
                                       ('simclr_sp', 'resnet50'),
                                       ('dino_sp', 'vit_test')])
def test_remat_gives_the_same_loss_and_gradients(name, arch):
  grads, losses, trees = [], [], []
  for remat in (False, True):
    config = load_config(name)
    config.model.arch = arch
    config.model.remat = remat
    if arch == 'resnet50':
      config.model.width_multiplier = 0.125
    method = get_method(config, RunInfo(total_steps=10, steps_per_epoch=5))
    mesh = sharding.make_mesh(jax.devices()[:1])
    tx = optim.make_optimizer(config.optim, lambda s: 0.1)
    state = create_state(method, tx, config, mesh)
    batch = fixed_batch()
    inputs = dict(batch, view1=normalize_images(batch['view1']),
                  view2=normalize_images(batch['view2']))

    def loss(params):
      return method.loss(params, state.batch_stats, state.method_state,
                         inputs, jax.random.key(0), 0)[0]

    value, g = jax.jit(jax.value_and_grad(loss))(state.params)
    losses.append(float(value))
    grads.append(g)
    trees.append(jax.tree.structure(state.params))
  assert trees[0] == trees[1]  # Same parameter names: checkpoints swap.
  assert losses[1] == pytest.approx(losses[0], rel=1e-6)
  for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4,
                               atol=1e-6)


def test_remat_cuts_the_activations_saved_for_the_backward_pass():
  """The bytes jax.vjp keeps for the backward pass (the activations): far
  fewer with remat. (XLA:CPU's buffer assignment does not show the saving —
  its temp size even grows slightly — so this is measured on the residuals,
  which are what a GPU's memory holds; launch/memory_analysis.py.)"""
  from launch import memory_analysis  # pylint: disable=g-import-not-at-top
  sizes = [memory_analysis.saved_activation_bytes(
      'simclr_sp', 'resnet18', 0.25, 32, 64, remat=r) for r in (False, True)]
  assert sizes[1] < 0.4 * sizes[0], sizes
