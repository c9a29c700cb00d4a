r"""python main.py --config=configs/dino_sp.py

DINO on semantic pairs (PS): student/teacher self-distillation, centre, teacher temperature warm-up, last layer frozen for the first epoch.

  python main.py --config=configs/dino_sp.py:runlocal     # CPU minutes
  python main.py --config=configs/dino_sp.py:smoke        # seconds (tests)

Defaults: configs/common.py METHOD_DEFAULTS (METHODS.md §3), paper shape
ResNet-50 (CIFAR stem), 64 px, batch 256, 200 epochs; ':arch=vit_small' uses
a ViT (patch --config.model.patch_size, default 8).
"""

from configs import common


def get_config(arg=None):
  return common.pretrain_config('dino', 'semantic', 'dino_sp', arg)
