r"""python main.py --config=configs/barlow_pa.py

Barlow Twins on augmented pairs (PA): cross-correlation to the identity, λ 0.0051, 2048-2048-2048 projector.

  python main.py --config=configs/barlow_pa.py:runlocal     # CPU minutes
  python main.py --config=configs/barlow_pa.py:smoke        # seconds (tests)

Defaults: configs/common.py METHOD_DEFAULTS (METHODS.md §3), paper shape
ResNet-50 (CIFAR stem), 64 px, batch 256, 200 epochs; ':arch=vit_small' uses
a ViT (patch --config.model.patch_size, default 8).
"""

from configs import common


def get_config(arg=None):
  return common.pretrain_config('barlow', 'augmented', 'barlow_pa', arg)
