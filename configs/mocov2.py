r"""python main.py --config=configs/mocov2.py:pairs=sp|pa[,scale=cpu|runlocal|smoke]

MoCo v2 (Chen et al., 2020): InfoNCE of each query against its momentum key
and a queue of past keys.

Switches (configs/common.py): pairs=sp semantic pairs (default; also
configs/mocov2_sp.py) or pa augmented (configs/mocov2_pa.py); none for the paper
shape, scale=cpu for the CPU-scale studies' run with the recipe CPU below.
With scale=cpu (launch/compare_methods.py --methods=mocov2), seed 0, on 2 CPU cores:
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
