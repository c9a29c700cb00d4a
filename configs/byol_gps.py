r"""python main.py --config=configs/byol_gps.py

GPS-SSL with BYOL: nearest-neighbour positives in a prior embedding.

  python main.py --config=configs/byol_gps.py:runlocal     # CPU minutes
  python main.py --config=configs/byol_gps.py:smoke        # seconds (tests)
  python main.py --config=configs/byol_gps.py:aug=weak    # flip only (GPS-SSL)

Defaults: the method's settings in configs/<method>.py, and configs/common.py MINED_DATA (CIFAR-10, ResNet-18, 32 px).
"""

from configs import common


def get_config(arg=None):
  return common.mined_config('byol', 'gps', 'byol_gps', arg)
