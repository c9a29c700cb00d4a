r"""python main.py --config=configs/vicreg.py:pairs=sp|pa

VICReg (Bardes et al., 2022): invariance, variance and covariance terms on a
wide expander.

One config for both pair sources: ``pairs=sp`` (semantic pairs: two images
of one class) or ``pairs=pa`` (augmented pairs: two views of one image).

  python main.py --config=configs/vicreg.py:pairs=sp             # paper shape
  python main.py --config=configs/vicreg.py:pairs=pa,runlocal    # CPU minutes
  python main.py --config=configs/vicreg.py:pairs=sp,scale=cpu   # study scale
  python main.py --config=configs/vicreg.py:pairs=pa,smoke       # seconds (tests)

(``configs/vicreg_sp.py`` and ``configs/vicreg_pa.py`` are the same two configs.)
Paper shape: ResNet-50 (CIFAR stem), 64 px, batch 256, 200 epochs on
Tiny-ImageNet with every setting below. ``scale=cpu`` is the shape of the
CPU-scale studies (ResNet-18 width 1/4, 32 px, batch 128, 8 epochs;
configs/common.py CPU_SCALE) with this method's CPU recipe (``CPU`` below).

Expected at CPU scale (``python launch/compare_methods.py --methods=vicreg``:
Tiny-ImageNet 200 classes × 100 matched images, seed 0, 2 CPU cores; the
untrained encoder's CIFAR-10 probe is 33.86 with default init, 37.92 with
PyTorch's):
CIFAR-10 probe PS 31.70, PA 54.51 (kNN@200 29.61 / 51.75), 29–39 min per run.
"""

from configs import common

# method.* (ssl_pairs/methods/vicreg.py documents each key).
METHOD = dict(
    name='vicreg',
    proj_hidden_dim=2048,   # Expander MLP: hidden width,
    proj_dim=2048,          # output width,
    proj_layers=3,          # and depth.
    sim_weight=25.0,        # λ (invariance),
    var_weight=25.0,        # μ (variance),
    cov_weight=1.0,         # ν (covariance).
)
OPTIM = dict(name='lars', base_lr=0.3, weight_decay=1e-4)  # lr × batch/256.
AUGMENT = dict(preset='asymmetric')
CPU = {}  # Its LARS kept rank 223 at step 100 at CPU scale.


def get_config(arg=None):
  return common.method_pretrain_config(METHOD, OPTIM, AUGMENT, CPU, arg)
