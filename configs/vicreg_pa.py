r"""python main.py --config=configs/vicreg_pa.py

VICReg on augmented pairs (PA): variance/invariance/covariance terms 25/25/1 on a 2048-2048-2048 expander.

  python main.py --config=configs/vicreg_pa.py:runlocal     # CPU minutes
  python main.py --config=configs/vicreg_pa.py:smoke        # seconds (tests)

Defaults: configs/common.py METHOD_DEFAULTS (METHODS.md §3), paper shape
ResNet-50 (CIFAR stem), 64 px, batch 256, 200 epochs; ':arch=vit_small' uses
a ViT (patch --config.model.patch_size, default 8).
"""

from configs import common


def get_config(arg=None):
  return common.pretrain_config('vicreg', 'augmented', 'vicreg_pa', arg)
