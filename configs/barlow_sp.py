r"""python main.py --config=configs/barlow_sp.py

Barlow Twins on semantic pairs (PS): cross-correlation to the identity, λ 0.0051, 2048-2048-2048 projector.

  python main.py --config=configs/barlow_sp.py:runlocal     # CPU minutes
  python main.py --config=configs/barlow_sp.py:smoke        # seconds (tests)

Defaults: configs/common.py METHOD_DEFAULTS (METHODS.md §3), paper shape
ResNet-50 (CIFAR stem), 64 px, batch 256, 200 epochs; ':arch=vit_small' uses
a ViT (patch --config.model.patch_size, default 8).
"""

from configs import common


def get_config(arg=None):
  return common.pretrain_config('barlow', 'semantic', 'barlow_sp', arg)
