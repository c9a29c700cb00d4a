r"""python main.py --config=configs/pirl_pa.py

PIRL on augmented pairs (PA): f(anchor) and g(jigsaw of the partner) against a memory bank of anchors, τ 0.07.

  python main.py --config=configs/pirl_pa.py:runlocal     # CPU minutes
  python main.py --config=configs/pirl_pa.py:smoke        # seconds (tests)

Defaults: configs/common.py METHOD_DEFAULTS (METHODS.md §3), paper shape
ResNet-50 (CIFAR stem), 64 px, batch 256, 200 epochs; ':arch=vit_small' uses
a ViT (patch --config.model.patch_size, default 8).
"""

from configs import common


def get_config(arg=None):
  return common.pretrain_config('pirl', 'augmented', 'pirl_pa', arg)
