r"""python main.py --config=configs/simclr_sp.py

SimCLR on semantic pairs (PS): two different images of one class.

  python main.py --config=configs/simclr_sp.py:runlocal     # ~3 CPU minutes
  python main.py --config=configs/simclr_sp.py:smoke        # seconds (tests)

Paper shape (arXiv 2510.08722): ResNet-50 (CIFAR stem), 64 px, batch 256,
200 epochs, LARS; pairs are built from Tiny-ImageNet labels with a fixed seed
(C classes × P pairs, see data.pairs_per_class/classes/match).
"""

import ml_collections

from configs import common


def simclr_method() -> ml_collections.ConfigDict:
  """SimCLR head and loss: 2048-d hidden layer, 128-d output, τ = 0.2."""
  return ml_collections.ConfigDict(dict(
      name='simclr', temperature=0.2, proj_hidden_dim=2048, proj_dim=128,
      proj_layers=2))


def get_config(arg=None):
  config = common.base_config(simclr_method(), 'semantic', 'simclr_sp', arg)
  # SimCLR's stronger colour jitter (solo-learn's CIFAR/ImageNet-100 setting).
  config.data.augment.color_jitter = (0.8, 0.8, 0.8, 0.2)
  return config
