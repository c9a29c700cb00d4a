r"""python main.py --config=configs/mocov2_spps.py

SPPS with MoCo v2: the momentum keys of the semantic positives join the
partner's key in the multi-positive InfoNCE.

  python main.py --config=configs/mocov2_spps.py:runlocal     # CPU minutes
  python main.py --config=configs/mocov2_spps.py:smoke        # seconds (tests)
  ... --config.data.spps.prior=checkpoint:runs/simclr_pa  # the semantic sampler

Defaults: the method's settings in configs/<method>.py, and configs/common.py MINED_DATA (CIFAR-10, ResNet-18, 32 px).
"""

from configs import common


def get_config(arg=None):
  return common.mined_config('mocov2', 'spps', 'mocov2_spps', arg)
