r"""python main.py --config=configs/pirl.py:pairs=sp|pa[,scale=cpu|runlocal|smoke]

PIRL (Misra & van der Maaten, 2020): NCE between an image and its jigsaw (or
partner) view against a memory bank.

Switches (configs/common.py): pairs=sp semantic pairs (default; also
configs/pirl_sp.py) or pa augmented (configs/pirl_pa.py); none for the paper
shape, scale=cpu for the CPU-scale studies' run with the recipe CPU below.
With scale=cpu (launch/compare_methods.py --methods=pirl), seed 0, on 2 CPU cores:
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
