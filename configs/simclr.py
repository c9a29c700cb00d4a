r"""python main.py --config=configs/simclr.py:pairs=sp|pa[,scale=cpu|runlocal|smoke]

SimCLR (Chen et al., 2020): InfoNCE (NT-Xent) over the 2B views of a batch.

Switches (configs/common.py): pairs=sp semantic pairs (default; also
configs/simclr_sp.py) or pa augmented (configs/simclr_pa.py); none for the paper
shape, scale=cpu for the CPU-scale studies' run with the recipe CPU below.
With scale=cpu (launch/compare_methods.py --methods=simclr), seed 0, on 2 CPU cores:
CIFAR-10 probe PS 42.25, PA 48.29 (kNN@200 38.74 / 42.52), about 27 min per
run.
"""

from configs import common

# method.* (ssl_pairs/methods/simclr.py documents each key).
METHOD = dict(
    name='simclr',
    temperature=0.2,        # τ of the InfoNCE loss.
    proj_hidden_dim=2048,   # Projection MLP: hidden width,
    proj_dim=128,           # output width,
    proj_layers=2,          # and depth (linear layers).
    bn_per_view=False,      # BatchNorm statistics per view, not per batch.
)
OPTIM = dict(name='lars', base_lr=0.4, weight_decay=1e-4)  # lr × batch/256.
# SimCLR's stronger colour jitter (solo-learn's CIFAR/ImageNet-100 setting).
AUGMENT = dict(preset='strong', color_jitter=(0.8, 0.8, 0.8, 0.2))
# scale=cpu: lightly's CIFAR-10 benchmark recipe (SGD lr 0.06 at batch 128,
# τ 0.5, colour-jitter strength 0.5) with PyTorch's layer initialisation,
# the init that peer starts from (launch/peer_lightly.py, BENCHMARKS.md).
CPU_JITTER_STRENGTH = 0.5
CPU = dict(
    optim=dict(name='sgd', base_lr=0.12, weight_decay=5e-4, warmup_epochs=0.0),
    method=dict(temperature=0.5),
    augment=dict(color_jitter=common.simclr_jitter(CPU_JITTER_STRENGTH)),
    model=dict(init='pytorch'),
)


def get_config(arg=None):
  return common.method_pretrain_config(METHOD, OPTIM, AUGMENT, CPU, arg)
