r"""python main.py --config=configs/byol.py:pairs=sp|pa

BYOL (Grill et al., 2020): an online predictor regresses the momentum target
of the other view.

One config for both pair sources: ``pairs=sp`` (semantic pairs: two images
of one class) or ``pairs=pa`` (augmented pairs: two views of one image).

  python main.py --config=configs/byol.py:pairs=sp             # paper shape
  python main.py --config=configs/byol.py:pairs=pa,runlocal    # CPU minutes
  python main.py --config=configs/byol.py:pairs=sp,scale=cpu   # study scale
  python main.py --config=configs/byol.py:pairs=pa,smoke       # seconds (tests)

(``configs/byol_sp.py`` and ``configs/byol_pa.py`` are the same two configs.)
Paper shape: ResNet-50 (CIFAR stem), 64 px, batch 256, 200 epochs on
Tiny-ImageNet with every setting below. ``scale=cpu`` is the shape of the
CPU-scale studies (ResNet-18 width 1/4, 32 px, batch 128, 8 epochs;
configs/common.py CPU_SCALE) with this method's CPU recipe (``CPU`` below).

Expected at CPU scale (``python launch/compare_methods.py --methods=byol``:
Tiny-ImageNet 200 classes × 100 matched images, seed 0, 2 CPU cores; the
untrained encoder's CIFAR-10 probe is 33.86 with default init, 37.92 with
PyTorch's):
CIFAR-10 probe PS 35.58, PA 38.41 (kNN@200 34.90 / 35.98), about 28 min per
run.
"""

from configs import common

# method.* (ssl_pairs/methods/byol.py documents each key).
METHOD = dict(
    name='byol',
    proj_hidden_dim=4096,   # Projection MLP hidden width,
    proj_dim=256,           # and output width.
    pred_hidden_dim=4096,   # Predictor hidden width.
    ema_base=0.99,          # Target momentum at step 0 (cosine up to 1).
)
OPTIM = dict(name='lars', base_lr=1.0, weight_decay=1e-5)  # lr × batch/256.
AUGMENT = dict(preset='asymmetric')
# scale=cpu: with its LARS (lr 0.5 at batch 128) BYOL collapsed on semantic
# pairs (effective rank 2.5 at step 100, from either init); with lightly's
# CIFAR-10 SGD the rank was 42 at step 100 (BENCHMARKS.md, "BYOL at CPU
# scale").
CPU = dict(optim=common.LIGHTLY_SGD)


def get_config(arg=None):
  return common.method_pretrain_config(METHOD, OPTIM, AUGMENT, CPU, arg)
