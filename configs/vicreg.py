r"""python main.py --config=configs/vicreg.py:pairs=sp|pa[,scale=cpu|runlocal|smoke]

VICReg (Bardes et al., 2022): invariance, variance and covariance terms on a
wide expander.

Switches (configs/common.py): pairs=sp semantic pairs (default; also
configs/vicreg_sp.py) or pa augmented (configs/vicreg_pa.py); none for the paper
shape, scale=cpu for the CPU-scale studies' run with the recipe CPU below.
With scale=cpu (launch/compare_methods.py --methods=vicreg), seed 0, on 2 CPU cores:
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
