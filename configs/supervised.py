r"""python main.py --config=configs/supervised.py

Supervised baseline: cross-entropy on the pretraining labels (the upper bound).

  python main.py --config=configs/supervised.py:runlocal     # CPU minutes
  python main.py --config=configs/supervised.py:smoke        # seconds (tests)

Both views of every image are classified with its label (crop + flip
augmentation); evaluated like every other method, by kNN and linear probe.
"""

from configs import common


def get_config(arg=None):
  config = common.pretrain_config('supervised', 'augmented', 'supervised', arg)
  config.data.pair_transform = 'none'
  return config
