r"""python main.py --config=configs/mocov2_sp.py

MoCo v2(+) on semantic pairs (PS): momentum key encoder, a queue of 16384 negatives, symmetric loss, SGD.

  python main.py --config=configs/mocov2_sp.py:runlocal     # CPU minutes
  python main.py --config=configs/mocov2_sp.py:smoke        # seconds (tests)

Defaults: configs/common.py METHOD_DEFAULTS (METHODS.md §3), paper shape
ResNet-50 (CIFAR stem), 64 px, batch 256, 200 epochs; ':arch=vit_small' uses
a ViT (patch --config.model.patch_size, default 8).
"""

from configs import common


def get_config(arg=None):
  return common.pretrain_config('mocov2', 'semantic', 'mocov2_sp', arg)
