r"""python launch/run_study.py --study=NAME [--dry_run] [--only=RUN,...]

Runs any study of ``launch/studies/`` (``--list`` names them): trains what
is missing (finished runs skipped, killed ones resumed), leaves a committed
record per finished run in ``<out>/runs/`` (refused when it no longer matches
the run this invocation would train) and writes ``<out>/results.md``,
``results.csv`` and the study's plots. ``--collect_only`` only rebuilds them
from the records; ``--dry_run`` lists the planned runs, their state and
overrides; ``--only`` trains just the runs it names; ``--scale`` picks the
study's preset (cpu|paper, where it has one) and each shared flag
(``--epochs``, ``--seed``, …) overrides it. ``--study=NAME --helpfull``
shows that study's own flags. How to add a study: launch/studies/README.md.
"""

import sys

from absl import flags

from launch import studies
from launch.studies import runner

_NAME = runner.study_from_argv(sys.argv[1:])
# The study's own flags exist only when --study names a study.
runner.define_flags(studies.get(_NAME) if _NAME in studies.names() else None)
flags.adopt_module_key_flags(runner)  # --help lists them.


def main(argv):
  runner.main(argv)


if __name__ == '__main__':
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
