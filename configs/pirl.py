r"""python main.py --config=configs/pirl.py:pairs=sp|pa

PIRL (Misra & van der Maaten, 2020): NCE between an image and its jigsaw (or
partner) view against a memory bank.

One config for both pair sources: ``pairs=sp`` (semantic pairs: two images
of one class) or ``pairs=pa`` (augmented pairs: two views of one image).

  python main.py --config=configs/pirl.py:pairs=sp             # paper shape
  python main.py --config=configs/pirl.py:pairs=pa,runlocal    # CPU minutes
  python main.py --config=configs/pirl.py:pairs=sp,scale=cpu   # study scale
  python main.py --config=configs/pirl.py:pairs=pa,smoke       # seconds (tests)

(``configs/pirl_sp.py`` and ``configs/pirl_pa.py`` are the same two configs.)
Paper shape: ResNet-50 (CIFAR stem), 64 px, batch 256, 200 epochs on
Tiny-ImageNet with every setting below. ``scale=cpu`` is the shape of the
CPU-scale studies (ResNet-18 width 1/4, 32 px, batch 128, 8 epochs;
configs/common.py CPU_SCALE) with this method's CPU recipe (``CPU`` below).

Expected at CPU scale (``python launch/compare_methods.py --methods=pirl``:
Tiny-ImageNet 200 classes × 100 matched images, seed 0, 2 CPU cores; the
untrained encoder's CIFAR-10 probe is 33.86 with default init, 37.92 with
PyTorch's):
CIFAR-10 probe PS 40.39, PA 39.47 (kNN@200 36.88 / 37.48), about 31 min per
run.
"""

from configs import common

# method.* (ssl_pairs/methods/pirl.py documents each key).
METHOD = dict(
    name='pirl',
    proj_dim=128,           # Embedding width (memory bank entries).
    temperature=0.07,
    num_negatives=4096,     # Bank entries drawn as negatives per step.
    bank_momentum=0.5,      # Memory bank update m.
    jigsaw_weight=0.5,      # λ: jigsaw/partner term vs bank term.
    objective='infonce',    # infonce | nce (VISSL's binary NCE).
)
OPTIM = dict(name='sgd', base_lr=0.12, weight_decay=1e-4)  # lr × batch/256.
AUGMENT = dict(preset='strong')
CPU = {}


def get_config(arg=None):
  return common.method_pretrain_config(METHOD, OPTIM, AUGMENT, CPU, arg)
