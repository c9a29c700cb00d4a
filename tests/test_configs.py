"""Configs: every file loads with its switches; paper shape runs one step."""

import glob
import importlib
import os

import jax
import numpy as np
import pytest

from configs import common
from conftest import REPO

CONFIG_FILES = sorted(
    os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, 'configs',
                                                             '*.py'))
    if not os.path.basename(p).startswith(('common', '__')))
TRAIN_CONFIGS = [n for n in CONFIG_FILES if n != 'linear_eval']


@pytest.mark.parametrize('name', CONFIG_FILES)
def test_config_loads_with_switches_and_documents_its_command(name):
  module = importlib.import_module(f'configs.{name}')
  assert module.__doc__.strip().startswith(
      f'python main.py --config=configs/{name}.py')
  for arg in (None, 'smoke') + (('runlocal',) if name != 'linear_eval' else ()):
    config = module.get_config(arg)
    assert config.task in ('train', 'eval')
  assert module.get_config('smoke').name == f'{name}-smoke'


@pytest.mark.parametrize('name', TRAIN_CONFIGS)
def test_defaults_follow_the_paper(name):
  config = importlib.import_module(f'configs.{name}').get_config()
  assert (config.model.arch, config.data.image_size, config.batch_size,
          config.epochs) == ('resnet50', 64, 256, 200)
  assert config.data.dataset == 'tiny_imagenet'
  assert config.data.pairs == {'sp': 'semantic', 'pa': 'augmented'}[
      name.split('_')[1]]


def test_parse_arg_types_and_rejects_unknown_switches():
  args = common.parse_arg('runlocal,arch=vit,size=48', **common.SWITCHES)
  assert args.runlocal is True and args.arch == 'vit' and args.size == 48
  assert args.smoke is False
  with pytest.raises(ValueError, match="Unknown config switch 'fast'"):
    common.parse_arg('fast', **common.SWITCHES)
  assert common.run_name('simclr_sp', 'runlocal,size=48') == \
      'simclr_sp-runlocal-size=48'


def test_locked_config_rejects_new_keys():
  config = importlib.import_module('configs.simclr_sp').get_config()
  config.lock()
  with pytest.raises(AttributeError):
    config.data.datset = 'x'


@pytest.mark.parametrize('name', ['simclr_sp'])
def test_paper_shape_runs_one_step_at_batch_2(name):
  """ResNet-50, 64 px, 2048-d projector: one real step on CPU (batch 2)."""
  from ssl_pairs import optim, sharding
  from ssl_pairs.methods import get_method
  from ssl_pairs.step import make_train_step
  from ssl_pairs.train import create_state
  config = importlib.import_module(f'configs.{name}').get_config()
  mesh = sharding.make_mesh(jax.devices()[:1])
  method = get_method(config)
  schedule = optim.learning_rate_schedule(config.optim, 100, 10, 2)
  tx = optim.make_optimizer(config.optim, schedule)
  state = create_state(method, tx, config, mesh)
  rng = np.random.default_rng(0)
  batch = {'view1': rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8),
           'view2': rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8),
           'label': np.zeros(2, np.int32), 'index': np.arange(2,
                                                              dtype=np.int32)}
  before = np.asarray(state.params['backbone']['conv_init']['kernel']).copy()
  step = jax.jit(make_train_step(method, tx, schedule, 0))
  for _ in range(2):  # Step 0 has learning rate 0 (linear warmup from 0).
    state, metrics = step(state, batch)
    assert np.isfinite(float(metrics['loss']))
    assert int(metrics['nonfinite']) == 0
  assert int(state.step) == 2
  assert not np.array_equal(
      before, np.asarray(state.params['backbone']['conv_init']['kernel']))
