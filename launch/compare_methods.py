r"""python launch/compare_methods.py --workdir=runs/compare_methods --out=docs/compare_methods

Every method × {semantic pairs, augmented pairs} at the CPU scale of
``launch/compare_pairs.py``, plus the supervised baseline.

The pairs are the same matched sets (``build_pairs``: all Tiny-ImageNet
classes, 100 images each, ``--match=images``), and every run has the same
network (ResNet-18, CIFAR stem, width 1/4), resolution (32-px views cut from
the 64-px images), batch (128),
number of steps (``--epochs`` over the 20k pairs) and seed. What differs is the
method and its own settings from ``configs/<method>_{sp,pa}.py`` — loss, heads,
EMA/queue/centre, augmentation preset, initialisation (unless ``--init`` names
one for all runs) and optimizer (unless ``--optimizer`` does). Two exceptions
at this scale: SimCLR takes the SGD recipe and PyTorch init calibrated against
the lightly peer (``cpu_scale.SIMCLR_RECIPE``), so its two runs are
``launch/compare_pairs.py``'s two arms; BYOL and DINO, whose LARS collapses
here, take the same SGD (``cpu_scale.CPU_OPTIMIZERS``). The other methods keep
their own init because BYOL collapsed fastest from PyTorch's (BENCHMARKS.md).
The supervised baseline trains on the augmented set (each image once per
epoch) with its labels.

The table starts with a floor for each layer initialisation the runs use:
the untrained encoder (``train.evaluate_init``, SimCLR's network and seed).
At the end every encoder is evaluated (kNN k = 20/200 and the linear probe on
CIFAR-10 test and Tiny-ImageNet val). Writes ``<out>/results.md``,
``results.csv`` and ``bars.png``. Resumable: finished runs are skipped, killed
ones resume; ``--methods`` picks a subset, ``--collect_only`` only rebuilds the
tables from what is there.

The table takes about 8 hours of two CPU cores, longer than a working session
whose ``runs/`` may not survive it, so each finished run also leaves a small
record, ``<out>/runs/<name>.json`` (its results, wall time, monitor curve every
10 steps, config, the SHA-256 of its pair file and the commit it ran at), which
is meant to be committed. A run with a record counts as done even when its
workdir is gone, and the tables are built from the records. A record whose
config or pair file differs from the run this invocation would train is
refused with the differing keys: delete it (or use another ``--out``) to train
that run again.

The study itself is data, ``launch/studies/methods.py``, run by the one
runner of every study (``launch/studies/runner.py``); this program is that
study's CLI, the same as ``launch/run_study.py --study=methods``, with the
runner's ``--dry_run`` (each planned run's state and overrides) and
``--only=RUN`` (train only those runs).
"""

from absl import flags

from launch import records
from launch.studies import methods as _methods
from launch.studies import runner

STUDY = _methods.STUDY
runner.define_flags(STUDY)
flags.adopt_module_key_flags(runner)  # --help lists them.

METHODS, PAIRS, BASELINE = _methods.METHODS, _methods.PAIRS, _methods.BASELINE
LEARNT_MARGIN, COLUMNS = _methods.LEARNT_MARGIN, _methods.COLUMNS
gain_cell = _methods.gain_cell
load_record, write_record, record_path = (records.load_record,
                                          records.write_record,
                                          records.record_path)
check_record, file_sha256 = records.check_record, records.file_sha256


def runs(methods, kinds=None):
  """(run name, method, pair kind) of every trained run, in order, for the
  pair sources ``kinds`` (default: both); the run name is also the config
  module's."""
  return [(r.name, r['method'], r['pairs'])
          for r in _methods.trained_runs(methods, kinds)]


def run_config(name, pair_file):
  """One run's config (configs/<name>.py) at the flags' settings."""
  return _methods.run_config(name, pair_file,
                             runner.context_from_flags(STUDY))


def main(argv):
  runner.main(argv, STUDY)


if __name__ == '__main__':
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
