r"""python main.py --config=configs/byol.py:pairs=sp|pa[,scale=cpu|runlocal|smoke]

BYOL (Grill et al., 2020): an online predictor regresses the momentum target
of the other view.

Switches (configs/common.py): pairs=sp semantic pairs (default; also
configs/byol_sp.py) or pa augmented (configs/byol_pa.py); none for the paper
shape, scale=cpu for the CPU-scale studies' run with the recipe CPU below.
With scale=cpu (launch/compare_methods.py --methods=byol), seed 0, on 2 CPU cores:
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
