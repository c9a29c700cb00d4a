r"""python main.py --config=configs/simclr_spps.py

SPPS with SimCLR: two views of each image plus views of its semantic
positive set (prior neighbours with similarity >= data.spps.threshold, at
most data.spps.max_positives) as extra positives in the multi-positive
NT-Xent.

  python main.py --config=configs/simclr_spps.py:runlocal     # CPU minutes
  python main.py --config=configs/simclr_spps.py:smoke        # seconds (tests)
  ... --config.data.spps.prior=checkpoint:runs/simclr_pa  # the semantic sampler

Defaults: the method's settings in configs/<method>.py, and configs/common.py MINED_DATA (CIFAR-10, ResNet-18, 32 px).
"""

from configs import common


def get_config(arg=None):
  return common.mined_config('simclr', 'spps', 'simclr_spps', arg)
