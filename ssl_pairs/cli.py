"""How programs end on the library's expected failures: one line on stderr
and a documented exit code instead of a traceback.

====================================  ====
exception                              exit
====================================  ====
``errors.UserError`` (bad input)          2
``metrics.NonFiniteLossError``            3
``checkpoint.CheckpointWriteError``       4
``train.Preempted`` (SIGTERM, saved)     75
====================================  ====

``main.py`` and the ``launch/`` programs that train wrap their ``main`` with
:func:`clear_errors`; anything else still raises with its traceback.
"""

import functools
import importlib.util
import os
import sys


def exit_code(error: BaseException):
  """The exit code of an expected failure, else None. Imports lazily, so a
  program can configure JAX before the library loads it."""
  from ssl_pairs import train  # pylint: disable=g-import-not-at-top
  from ssl_pairs.checkpoint import CheckpointWriteError  # pylint: disable=g-import-not-at-top
  from ssl_pairs.errors import UserError  # pylint: disable=g-import-not-at-top
  from ssl_pairs.metrics import NonFiniteLossError  # pylint: disable=g-import-not-at-top
  for kind, code in ((UserError, 2), (NonFiniteLossError, 3),
                     (CheckpointWriteError, 4),
                     (train.Preempted, train.PREEMPTED_EXIT_CODE)):
    if isinstance(error, kind):
      return code
  return None


def clear_errors(main):
  """Wraps an absl ``main(argv)``: expected failures print their message
  (``error: …``; a preemption says where its checkpoint is) and exit with
  their code."""
  @functools.wraps(main)
  def wrapped(argv):
    try:
      return main(argv)
    except Exception as e:  # pylint: disable=broad-except
      code = exit_code(e)
      if code is None:
        raise
      from ssl_pairs import train  # pylint: disable=g-import-not-at-top
      prefix = '' if isinstance(e, train.Preempted) else 'error: '
      print(f'{prefix}{e}', file=sys.stderr, flush=True)
      sys.exit(code)
  return wrapped


HELP_FLAGS = ('help', 'helpshort', 'helpfull', '?')


def run(main, clear: bool = True, **kwargs):
  """``absl.app.run(main)`` (wrapped by :func:`clear_errors` unless
  ``clear=False``), except that asking for help exits 0, not absl's 1: help
  asked for is not a failure."""
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top

  def quiet_main(argv):
    # JAX, Orbax and grain log backend probes and every save at INFO; keep
    # the terminal for our own lines (--verbosity=0 shows them).
    if not flags.FLAGS['verbosity'].present:
      logging.set_verbosity(logging.WARNING)
    return main(argv)

  wants_help = any(a.lstrip('-').split('=')[0] in HELP_FLAGS
                   for a in sys.argv[1:] if a.startswith('-'))
  try:
    app.run(clear_errors(quiet_main) if clear else quiet_main, **kwargs)
  except SystemExit as e:
    if wants_help and e.code == 1:
      sys.exit(0)
    raise


def installed_configs_dir():
  """The folder of the ``configs`` package (the checkout's or the wheel's)."""
  spec = importlib.util.find_spec('configs')
  if spec is None or not spec.submodule_search_locations:
    return None
  return list(spec.submodule_search_locations)[0]


def resolve_config_path(value: str) -> str:
  """``--config``'s value with its path made to exist where it can: a path
  that exists is kept; otherwise ``NAME``, ``NAME.py`` or ``configs/NAME.py``
  is looked up in the installed configs (``:switches`` are kept)."""
  path, sep, switches = value.partition(':')
  if os.path.exists(path):
    return value
  folder = installed_configs_dir()
  if folder is None:
    return value
  name = os.path.basename(path)
  name = name if name.endswith('.py') else name + '.py'
  candidate = os.path.join(folder, name)
  if os.path.isfile(candidate):
    return candidate + sep + switches
  return value


def resolve_config_args(argv, default=None):
  """argv with ``--config`` resolved (see :func:`resolve_config_path`) and,
  when ``default`` is given and no ``--config`` is, ``--config=default``."""
  out, given = list(argv[:1]), False
  args = list(argv[1:])
  i = 0
  while i < len(args):
    a = args[i]
    if a.startswith('--config='):
      out.append('--config=' + resolve_config_path(a[len('--config='):]))
      given = True
    elif a == '--config' and i + 1 < len(args):
      out += ['--config', resolve_config_path(args[i + 1])]
      given = True
      i += 1
    else:
      out.append(a)
    i += 1
  if default and not given:
    out.insert(1, '--config=' + resolve_config_path(default))
  return out
