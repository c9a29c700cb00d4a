r"""python main.py --config=configs/simclr_sp.py

SimCLR on semantic pairs (PS): two different images of one class.

  python main.py --config=configs/simclr_sp.py:runlocal     # ~3 CPU minutes
  python main.py --config=configs/simclr_sp.py:smoke        # seconds (tests)

Paper shape (arXiv 2510.08722): ResNet-50 (CIFAR stem), 64 px, batch 256,
200 epochs, LARS; pairs are built from Tiny-ImageNet labels with a fixed seed
(C classes × P pairs, see data.pairs_per_class/classes/match).
"""

from configs import common


def get_config(arg=None):
  return common.pretrain_config('simclr', 'semantic', 'simclr_sp', arg)
