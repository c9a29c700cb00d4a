r"""python main.py --config=configs/supervised.py

Supervised baseline: cross-entropy on the pretraining labels.

  python main.py --config=configs/supervised.py:runlocal     # CPU minutes
  python main.py --config=configs/supervised.py:smoke        # seconds (tests)

Both views of every image are classified with its label (crop + flip
augmentation); evaluated like every other method, by kNN and linear probe.
Expected at CPU scale (``python launch/compare_methods.py
--methods=supervised``, Tiny-ImageNet 200 classes × 100 images, 8 epochs,
seed 0): CIFAR-10 probe 43.83, kNN@200 39.77, about 25 min; it underfits at
that budget (training cross-entropy 5.37 → 4.44, still falling).
"""

from configs import common

METHOD = dict(name='supervised')  # No settings of its own.
OPTIM = dict(name='sgd', base_lr=0.1, weight_decay=5e-4)  # lr × batch/256.
AUGMENT = dict(preset='weak_rrc')  # Random resized crop + flip.
CPU = {}  # Its own SGD.


def get_config(arg=None):
  config = common.pretrain_config(METHOD, OPTIM, AUGMENT, 'augmented',
                                  'supervised', arg)
  config.data.pair_transform = 'none'
  return config
