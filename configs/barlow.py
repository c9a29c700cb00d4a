r"""python main.py --config=configs/barlow.py:pairs=sp|pa[,scale=cpu|runlocal|smoke]

Barlow Twins (Zbontar et al., 2021): the cross-correlation of the two views
driven to the identity.

Switches (configs/common.py): pairs=sp semantic pairs (default; also
configs/barlow_sp.py) or pa augmented (configs/barlow_pa.py); none for the paper
shape, scale=cpu for the CPU-scale studies' run with the recipe CPU below.
With scale=cpu (launch/compare_methods.py --methods=barlow), seed 0, on 2 CPU cores:
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
