r"""python main.py --config=configs/dino.py:pairs=sp|pa[,scale=cpu|runlocal|smoke]

DINO (Caron et al., 2021): the student matches the centred, sharpened teacher
over prototype logits.

Switches (configs/common.py): pairs=sp semantic pairs (default; also
configs/dino_sp.py) or pa augmented (configs/dino_pa.py); none for the paper
shape, scale=cpu for the CPU-scale studies' run with the recipe CPU below.
With scale=cpu (launch/compare_methods.py --methods=dino), seed 0, on 2 CPU cores:
CIFAR-10 probe PS 34.43, PA 36.17 (kNN@200 32.14 / 33.98) with the earlier CPU
recipe (no warm-up, EMA 0.996, no BN in the head), about 31 min per run; the
runs with the recipe below are in BENCHMARKS.md, "DINO at CPU scale".
"""

from configs import common

# method.* (ssl_pairs/methods/dino.py documents each key). A ViT backbone:
# ':arch=vit_small' (patch --config.model.patch_size, default 8).
METHOD = dict(
    name='dino',
    proj_hidden_dim=2048,   # Head MLP hidden width,
    bottleneck_dim=256,     # bottleneck (L2-normalised),
    num_prototypes=4096,    # and prototypes (weight-normalised last layer).
    student_temp=0.1,
    teacher_temp_start=0.04,  # Teacher temperature, warmed up linearly
    teacher_temp=0.07,        # to this
    teacher_temp_warmup_epochs=30.0,  # over these epochs.
    center_momentum=0.9,
    ema_base=0.996,         # Teacher momentum at step 0 (cosine up to 1).
    freeze_last_layer_epochs=1.0,
    use_bn_in_head=False,   # BatchNorm in the head MLP (a reference option).
)
OPTIM = dict(name='lars', base_lr=0.3, weight_decay=1e-5)  # lr × batch/256.
AUGMENT = dict(preset='asymmetric')
# scale=cpu: lightly's SGD with one warm-up epoch, teacher EMA 0.99 and BN in
# the head. With the earlier recipe (no warm-up, EMA 0.996, no BN) DINO sat
# on the uniform plateau ln 4096 in every committed run: within ~10 steps the
# centre catches up with the teacher's batch mean while a barely-trained
# teacher's logits hardly differ between images, so the centred, sharpened
# targets turn uniform, and a 250-step teacher (0.996) follows the student
# too slowly to sharpen them again in 1250 steps (BENCHMARKS.md, "DINO at CPU
# scale": loss / teacher entropy at step 150 of PA 8.05 / 7.06 with this
# recipe; the old one's loss was 8.33 at step 100).
CPU = dict(optim=dict(common.LIGHTLY_SGD, warmup_epochs=1.0),
           method=dict(ema_base=0.99, use_bn_in_head=True))


def get_config(arg=None):
  return common.method_pretrain_config(METHOD, OPTIM, AUGMENT, CPU, arg)
