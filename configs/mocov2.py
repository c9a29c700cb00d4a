r"""python main.py --config=configs/mocov2.py:pairs=sp|pa

MoCo v2 (Chen et al., 2020): InfoNCE of each query against its momentum key
and a queue of past keys.

One config for both pair sources: ``pairs=sp`` (semantic pairs: two images
of one class) or ``pairs=pa`` (augmented pairs: two views of one image).

  python main.py --config=configs/mocov2.py:pairs=sp             # paper shape
  python main.py --config=configs/mocov2.py:pairs=pa,runlocal    # CPU minutes
  python main.py --config=configs/mocov2.py:pairs=sp,scale=cpu   # study scale
  python main.py --config=configs/mocov2.py:pairs=pa,smoke       # seconds (tests)

(``configs/mocov2_sp.py`` and ``configs/mocov2_pa.py`` are the same two configs.)
Paper shape: ResNet-50 (CIFAR stem), 64 px, batch 256, 200 epochs on
Tiny-ImageNet with every setting below. ``scale=cpu`` is the shape of the
CPU-scale studies (ResNet-18 width 1/4, 32 px, batch 128, 8 epochs;
configs/common.py CPU_SCALE) with this method's CPU recipe (``CPU`` below).

Expected at CPU scale (``python launch/compare_methods.py --methods=mocov2``:
Tiny-ImageNet 200 classes × 100 matched images, seed 0, 2 CPU cores; the
untrained encoder's CIFAR-10 probe is 33.86 with default init, 37.92 with
PyTorch's):
CIFAR-10 probe PS 38.56, PA 45.93 (kNN@200 36.13 / 42.43), 28–40 min per run.
"""

from configs import common

# method.* (ssl_pairs/methods/mocov2.py documents each key).
METHOD = dict(
    name='mocov2',
    temperature=0.2,        # τ of the InfoNCE loss.
    proj_hidden_dim=2048,   # Projection MLP hidden width,
    proj_dim=256,           # and output width (the key size).
    # The paper's EMA and its 8 GPUs' shuffled BN; with EMA 0.99 the
    # embedding outran the queue (BENCHMARKS.md).
    queue_size=16384,       # Keys kept (a multiple of the keys per step).
    ema_base=0.999,         # Key encoder momentum.
    symmetric=True,         # Both views are queries (and keys).
    shuffle_bn_groups=8,    # BN statistics over this many shuffled groups.
)
OPTIM = dict(name='sgd', base_lr=0.3, weight_decay=1e-4)  # lr × batch/256.
AUGMENT = dict(preset='strong')
CPU = {}  # Its own SGD works at CPU scale.


def get_config(arg=None):
  return common.method_pretrain_config(METHOD, OPTIM, AUGMENT, CPU, arg)
