"""Settings and plumbing shared by the CPU-scale comparison launchers.

``compare_pairs``, ``compare_methods`` and ``compare_mined`` train every arm at
one scale (network, resolution, batch, epochs, seed) and evaluate it the same
way; this module is that one place.
"""

import os
import sys


from configs import common  # pylint: disable=g-bad-import-order
from configs import simclr as _simclr  # pylint: disable=g-bad-import-order

# The shared scale of one run's config (configs/common.py set_scale).
apply = common.set_scale

# SimCLR at CPU scale as compare_pairs' flags (their defaults): the CPU
# recipe of configs/simclr.py — lightly's CIFAR-10 benchmark recipe with
# PyTorch's layer initialisation, the init that peer starts from. The other
# methods keep their configs' init: with PyTorch's, BYOL collapsed within 80
# steps at this scale (BENCHMARKS.md, "BYOL at CPU scale").
SIMCLR_RECIPE = dict(
    optimizer=_simclr.CPU['optim']['name'],
    base_lr=_simclr.CPU['optim']['base_lr'],
    weight_decay=_simclr.CPU['optim']['weight_decay'],
    temperature=_simclr.CPU['method']['temperature'],
    jitter_strength=_simclr.CPU_JITTER_STRENGTH,
    warmup_epochs=_simclr.CPU['optim']['warmup_epochs'],
    init=_simclr.CPU['model']['init'])

# Methods other than SimCLR whose CPU recipe replaces their own optimizer
# (each one's reason is beside its ``CPU`` in configs/<method>.py).
CPU_OPTIMIZERS = {
    name: common.method_module(name).CPU['optim']
    for name in ('mocov2', 'byol', 'dino', 'vicreg', 'barlow', 'pirl')
    if 'optim' in common.method_module(name).CPU}


def apply_cpu_recipe(c):
  """The CPU recipe of ``c``'s method (configs/<method>.py ``CPU``)."""
  return common.apply_cpu_recipe(c, common.method_module(c.method.name).CPU)


def apply_simclr_recipe(c, *, optimizer: str, base_lr: float,
                        weight_decay: float, temperature: float,
                        jitter_strength: float, warmup_epochs: float,
                        init: str):
  """Sets a SimCLR config's optimiser, τ, colour jitter and init (in place):
  compare_pairs' flags, whose defaults are configs/simclr.py's CPU recipe."""
  c.optim.name, c.optim.base_lr = optimizer, base_lr
  c.optim.weight_decay, c.optim.warmup_epochs = weight_decay, warmup_epochs
  c.method.temperature = temperature
  c.data.augment.color_jitter = common.simclr_jitter(jitter_strength)
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
