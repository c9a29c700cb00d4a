r"""python main.py --config=configs/byol_pa.py

BYOL on augmented pairs (PA): online predictor against an EMA target (τ 0.99 → 1), LARS lr 1.0.

  python main.py --config=configs/byol_pa.py:runlocal     # CPU minutes
  python main.py --config=configs/byol_pa.py:smoke        # seconds (tests)

Defaults: configs/common.py METHOD_DEFAULTS (METHODS.md §3), paper shape
ResNet-50 (CIFAR stem), 64 px, batch 256, 200 epochs; ':arch=vit_small' uses
a ViT (patch --config.model.patch_size, default 8).
"""

from configs import common


def get_config(arg=None):
  return common.pretrain_config('byol', 'augmented', 'byol_pa', arg)
