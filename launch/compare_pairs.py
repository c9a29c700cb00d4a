r"""python launch/compare_pairs.py

Semantic pairs (PS) vs augmented pairs (PA) at CPU scale, with learning
curves: SimCLR on the matched Tiny-ImageNet sets (all classes × 100 images,
PS pairing up the images PA uses), evaluated every ``--eval_every`` epochs
from epoch 0 (the untrained encoder) by kNN and the linear probe on CIFAR-10
test and Tiny-ImageNet val. Writes ``docs/compare_pairs/results.md``,
``results.csv`` and ``curve.png`` (another ``--workdir``: ``<workdir>/
report``), and a committed record of each finished arm in ``<out>/runs``.

The study itself is data, ``launch/studies/pairs.py`` (its docstring says
what each arm is), run by the one runner of every study; this program is
the same as ``launch/run_study.py --study=pairs``, with the runner's flags
(``--dry_run``, ``--only=simclr_sp``, ``--collect_only``, ``--seed``, …)
and the study's recipe flags (``--optimizer --temperature
--jitter_strength --warmup_epochs --init --eval_every`` …). The 48-epoch
curve is ``--study=horizon``.
"""

from absl import flags

from launch.studies import pairs as _pairs
from launch.studies import runner

STUDY = _pairs.STUDY
runner.define_flags(STUDY)
flags.adopt_module_key_flags(runner)  # --help lists them.


def main(argv):
  runner.main(argv, STUDY)


if __name__ == '__main__':
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
