r"""python main.py --config=configs/simclr_pa.py

SimCLR on augmented pairs (PA): the paper's baseline.

  python main.py --config=configs/simclr_pa.py:runlocal     # ~3 CPU minutes
  python main.py --config=configs/simclr_pa.py:smoke        # seconds (tests)

Each image's partner is a random "pair transform" of itself (crop, rotation,
flip, colour jitter); then both go through the same view pipeline as PS.
--config.data.pair_transform=none gives plain two-view SimCLR.
"""

from configs import common


def get_config(arg=None):
  return common.pretrain_config('simclr', 'augmented', 'simclr_pa', arg)
