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
