r"""python main.py --config=configs/mocov2_pa.py

MoCo v2(+) on augmented pairs (PA): momentum key encoder, a queue of 16384 negatives, symmetric loss, SGD.

  python main.py --config=configs/mocov2_pa.py:runlocal     # CPU minutes
  python main.py --config=configs/mocov2_pa.py:smoke        # seconds (tests)

Defaults: configs/common.py METHOD_DEFAULTS (METHODS.md §3), paper shape
ResNet-50 (CIFAR stem), 64 px, batch 256, 200 epochs; ':arch=vit_small' uses
a ViT (patch --config.model.patch_size, default 8).
"""

from configs import common


def get_config(arg=None):
  return common.pretrain_config('mocov2', 'augmented', 'mocov2_pa', arg)
