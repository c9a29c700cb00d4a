"""Settings and plumbing shared by the CPU-scale comparison launchers.

``compare_pairs``, ``compare_methods`` and ``compare_mined`` train every arm at
one scale (network, resolution, batch, epochs, seed) and evaluate it the same
way; this module is that one place.
"""

import os
import sys


def apply(c, *, arch: str, width: float, image_size: int, batch_size: int,
          epochs: float, seed: int, eval_datasets: str, eval_train_limit: int,
          eval_every: float = 0.0):
  """Sets the shared scale and evaluation of one run's config (in place)."""
  c.data.image_size = image_size
  c.model.arch, c.model.width_multiplier = arch, width
  c.batch_size = batch_size
  c.total_steps = 0
  c.epochs = epochs
  c.seed = seed
  c.checkpoint_every_steps = 200
  c.log_every_steps = 10
  c.eval.datasets = eval_datasets
  c.eval.train_limit = eval_train_limit
  c.eval.test_limit = 0
  c.eval.every_epochs = eval_every
  c.eval.probe_max_iter = 1000
  return c


# SimCLR at CPU scale: lightly's CIFAR-10 benchmark recipe (the peer
# calibration's) with PyTorch's layer initialisation, the init that peer starts
# from. compare_pairs' flag defaults, and the SimCLR runs of compare_methods
# (with --optimizer=method) and reproduce --scale=cpu. The other methods keep
# their configs' init: with PyTorch's, BYOL collapsed within 80 steps at this
# scale (BENCHMARKS.md, "BYOL at CPU scale").
SIMCLR_RECIPE = dict(optimizer='sgd', base_lr=0.12, weight_decay=5e-4,
                     temperature=0.5, jitter_strength=0.5, warmup_epochs=0.0,
                     init='pytorch')


# Other methods whose own (paper) optimizer fails at CPU scale, with the one
# that replaces it there: lightly's CIFAR-10 benchmark optimizer (SGD, lr
# 0.06 at batch 128, weight decay 5e-4), SimCLR's too. BYOL with its LARS
# (lr 0.5 at batch 128) collapsed on semantic pairs (effective rank 2.5 at
# step 100, from either init); with this SGD the rank was 42 at step 100
# (BENCHMARKS.md, "BYOL at CPU scale"). DINO with its LARS (lr 0.15 at batch
# 128) lost rank the same way on semantic pairs (prototype-logit rank 91 at
# step 1, 9.6 at step 100), with this SGD it held 103. VICReg's LARS kept
# rank 223 at step 100, so VICReg keeps it.
_LIGHTLY_SGD = dict(name='sgd', base_lr=0.12, weight_decay=5e-4,
                    warmup_epochs=0.0)
# DINO: that SGD with one warm-up epoch, and (CPU_METHOD below) teacher EMA
# 0.99 instead of 0.996 and BatchNorm in the head (use_bn_in_head, an option of
# the reference code and of solo-learn). With the earlier recipe (no warm-up,
# EMA 0.996, no BN) DINO sat on the uniform plateau ln 4096 in every committed
# run: within ~10 steps the centre catches up with the teacher's batch mean
# (momentum 0.9) while a barely-trained teacher's logits hardly differ between
# images, so the centred, sharpened targets turn uniform, and a 250-step
# teacher (0.996) follows the student too slowly to sharpen them again in 1250
# steps. 150-step checks on PA (launch/early_steps.py, BENCHMARKS "DINO at CPU
# scale"), loss / teacher entropy at step 150: EMA 0.99 + 1 warm-up epoch
# 8.21 / 7.49 (entropy falling from its 7.96 peak at step 44); the same with
# BN in the head 8.05 / 7.06; the committed run of the old recipe had its loss
# at 8.41 by step 40 and 8.33 at step 100 (above ln K = 8.318: a constant
# student against uniform targets).
_DINO_SGD = dict(_LIGHTLY_SGD, warmup_epochs=1.0)
CPU_OPTIMIZERS = {'byol': _LIGHTLY_SGD, 'dino': _DINO_SGD}
CPU_METHOD = {'dino': dict(ema_base=0.99, use_bn_in_head=True)}


def apply_cpu_optimizer(c, method: str):
  """Replaces ``method``'s optimizer by its CPU_OPTIMIZERS entry and sets
  its CPU_METHOD settings, if any (in place)."""
  for key, value in CPU_OPTIMIZERS.get(method, {}).items():
    c.optim[key] = value
  for key, value in CPU_METHOD.get(method, {}).items():
    c.method[key] = value
  return c


def apply_simclr_recipe(c, *, optimizer: str, base_lr: float,
                        weight_decay: float, temperature: float,
                        jitter_strength: float, warmup_epochs: float,
                        init: str):
  """Sets a SimCLR config's optimiser, τ, colour jitter (SimCLR's strength
  s: brightness/contrast/saturation 0.8·s, hue 0.2·s) and init (in place)."""
  c.optim.name, c.optim.base_lr = optimizer, base_lr
  c.optim.weight_decay, c.optim.warmup_epochs = weight_decay, warmup_epochs
  c.method.temperature = temperature
  j = jitter_strength
  c.data.augment.color_jitter = (0.8 * j, 0.8 * j, 0.8 * j, 0.2 * j)
  c.model.init = init
  return c


def out_dir(out: str, workdir_flag, default_out: str) -> str:
  """Where a launcher writes its tables: ``out`` when given; else
  ``default_out`` (the committed ``docs/`` page) for the default workdir, and
  ``<workdir>/report`` for any other, so an experiment in its own workdir never
  overwrites the published tables."""
  if out:
    return out
  if workdir_flag.value == workdir_flag.default:
    return default_out
  return os.path.join(workdir_flag.value, 'report')


def record_command(workdir: str, trained: bool) -> str:
  """Writes this invocation's flags to workdir/command.txt after training,
  and returns the flags of the run that produced the results there."""
  path = os.path.join(workdir, 'command.txt')
  if trained:
    os.makedirs(workdir, exist_ok=True)
    with open(path, 'w') as f:
      f.write(' '.join(sys.argv[1:]))
  with open(path) as f:
    return f.read().strip()


def finish_figure(fig, ax, path: str, ylabel: str, legend=True) -> None:
  """Grid, legend, tight layout; saves the PNG and closes the figure."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  ax.set_ylabel(ylabel)
  ax.grid(axis='y', alpha=0.3)
  if legend:
    ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
