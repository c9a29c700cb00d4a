r"""python main.py --config=configs/barlow.py:pairs=sp|pa

Barlow Twins (Zbontar et al., 2021): the cross-correlation of the two views
driven to the identity.

One config for both pair sources: ``pairs=sp`` (semantic pairs: two images
of one class) or ``pairs=pa`` (augmented pairs: two views of one image).

  python main.py --config=configs/barlow.py:pairs=sp             # paper shape
  python main.py --config=configs/barlow.py:pairs=pa,runlocal    # CPU minutes
  python main.py --config=configs/barlow.py:pairs=sp,scale=cpu   # study scale
  python main.py --config=configs/barlow.py:pairs=pa,smoke       # seconds (tests)

(``configs/barlow_sp.py`` and ``configs/barlow_pa.py`` are the same two configs.)
Paper shape: ResNet-50 (CIFAR stem), 64 px, batch 256, 200 epochs on
Tiny-ImageNet with every setting below. ``scale=cpu`` is the shape of the
CPU-scale studies (ResNet-18 width 1/4, 32 px, batch 128, 8 epochs;
configs/common.py CPU_SCALE) with this method's CPU recipe (``CPU`` below).

Expected at CPU scale (``python launch/compare_methods.py --methods=barlow``:
Tiny-ImageNet 200 classes × 100 matched images, seed 0, 2 CPU cores; the
untrained encoder's CIFAR-10 probe is 33.86 with default init, 37.92 with
PyTorch's):
CIFAR-10 probe PS 31.95 (collapsed), PA 47.55 (kNN@200 27.53 / 41.77), about
27 min per run.
"""

from configs import common

# method.* (ssl_pairs/methods/vicreg.py, BarlowTwins, documents each key).
METHOD = dict(
    name='barlow',
    proj_hidden_dim=2048,   # Projector MLP: hidden width,
    proj_dim=2048,          # output width,
    proj_layers=3,          # and depth.
    lambd=0.0051,           # Weight of the off-diagonal terms.
    scale=1.0,              # Scale of the loss.
)
# The paper's biases and BN parameters: lr 0.0048 / 0.2 (bias_lr_factor).
OPTIM = dict(name='lars', base_lr=0.3, weight_decay=1e-4, bias_lr_factor=0.024)
AUGMENT = dict(preset='asymmetric')
CPU = {}


def get_config(arg=None):
  return common.method_pretrain_config(METHOD, OPTIM, AUGMENT, CPU, arg)
