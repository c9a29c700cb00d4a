"""ssl_pairs.cli: expected failures end programs with one line and a code."""

import pytest

from ssl_pairs import cli
from ssl_pairs import train
from ssl_pairs.checkpoint import CheckpointWriteError
from ssl_pairs.errors import UserError
from ssl_pairs.metrics import NonFiniteLossError


@pytest.mark.parametrize('error, code, line', [
    (UserError('bad flag; fix it.'), 2, 'error: bad flag; fix it.'),
    (NonFiniteLossError('loss is nan'), 3, 'error: loss is nan'),
    (CheckpointWriteError('disk full'), 4, 'error: disk full'),
    (train.Preempted('Stopped by SIGTERM after step 7'), 75,
     'Stopped by SIGTERM after step 7'),
])
def test_expected_failures_exit_with_their_code_and_one_line(
    error, code, line, capsys):
  def main(argv):
    assert argv == ['prog']
    raise error

  with pytest.raises(SystemExit) as exit_info:
    cli.clear_errors(main)(['prog'])
  assert exit_info.value.code == code
  assert capsys.readouterr().err == line + '\n'


def test_other_errors_keep_their_traceback_and_results_pass_through():
  def broken(argv):
    raise KeyError('a bug')

  with pytest.raises(KeyError, match='a bug'):
    cli.clear_errors(broken)(['prog'])
  assert cli.clear_errors(lambda argv: 'done')(['prog']) == 'done'


@pytest.mark.parametrize('program', ['main.py', 'launch/compare_methods.py',
                                     'launch/benchmark.py',
                                     'ssl_pairs/tools/build_pairs.py'])
def test_help_asked_for_exits_0_and_a_mistake_still_fails(program):
  import os
  import subprocess
  import sys
  from conftest import REPO
  env = dict(os.environ, PYTHONPATH=REPO)
  for flag in ('--help', '--helpfull'):
    out = subprocess.run([sys.executable, program, flag], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'flags:' in out.stdout
  out = subprocess.run([sys.executable, program, '--no_such_flag=1'],
                       cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=120)
  assert out.returncode not in (0, None)


def test_programs_print_no_library_log_lines(tmp_path):
  """A failing ``ssl-pairs prepare-data`` (offline) prints its own lines and
  one error, none of the INFO lines JAX logs while probing backends."""
  import os  # pylint: disable=g-import-not-at-top
  import re  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from conftest import REPO  # pylint: disable=g-import-not-at-top
  proc = subprocess.run(
      [sys.executable, '-m', 'ssl_pairs', 'prepare-data', 'tiny_imagenet',
       f'--data_dir={tmp_path}', '--tiny_imagenet_url=http://127.0.0.1:9/x.zip'],
      cwd=REPO, capture_output=True, text=True, timeout=120,
      env=dict(os.environ, JAX_PLATFORMS=''))
  assert proc.returncode == 2, proc.stderr
  lines = (proc.stdout + proc.stderr).splitlines()
  assert not [l for l in lines if re.match(r'^[IWEF]\d{4} ', l)], lines
  assert [l for l in lines if l.startswith('error:')] == [lines[-1]]
  assert '127.0.0.1:9' in lines[-1]
