r"""python main.py --config=configs/simclr_gps.py

GPS-SSL with SimCLR: each image's positive is drawn from its k nearest
neighbours in a prior embedding (data.gps: prior, k, metric, refresh_epochs).

  python main.py --config=configs/simclr_gps.py:runlocal     # CPU minutes
  python main.py --config=configs/simclr_gps.py:smoke        # seconds (tests)
  python main.py --config=configs/simclr_gps.py:aug=weak  # flip only (GPS-SSL)
  ... --config.data.gps.prior=checkpoint:runs/simclr_pa   # a trained encoder

Defaults: the method's settings in configs/<method>.py, and configs/common.py MINED_DATA (CIFAR-10, ResNet-18, 32 px).
"""

from configs import common


def get_config(arg=None):
  return common.mined_config('simclr', 'gps', 'simclr_gps', arg)
