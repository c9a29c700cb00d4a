r"""Train + evaluate a config, or evaluate a checkpoint (``ssl-pairs train``,
``ssl-pairs eval``, ``python main.py``).

  ssl-pairs train --config=configs/simclr_sp.py:runlocal
  ssl-pairs eval --config.restore=runs/simclr_sp
  python main.py --config=configs/simclr_sp.py
  python main.py --config=configs/simclr_sp.py:runlocal --workdir=runs/quick
  python main.py --config=configs/linear_eval.py --config.restore=runs/simclr_sp
  python main.py --config=configs/simclr_sp.py --config.batch_size=512

The workdir defaults to runs/<config name>; a workdir that holds a checkpoint
is resumed. Multi-host: pass --multihost (or run under SLURM/TPU environments
that jax.distributed.initialize() detects) so every process joins one mesh.

``--config`` takes a path, or a name of the installed configs
(``--config=simclr_sp:runlocal``, ``--config=configs/simclr_sp.py`` from any
folder): a path that does not exist is looked up among them.
"""

import os
import re
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Config file, e.g. configs/simclr_sp.py[:runlocal].',
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Run directory (default: runs/<config name>).')
_MULTIHOST = flags.DEFINE_bool(
    'multihost', False, 'Call jax.distributed.initialize() before training '
    '(cluster environments such as SLURM are detected; otherwise pass the '
    'three flags below).')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'host:port of process 0 (multi-host).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None,
                                      'Number of processes (multi-host).')
_PROCESS_ID = flags.DEFINE_integer('process_id', None,
                                   'This process\'s index (multi-host).')


_COMPILATION_CACHE = flags.DEFINE_string(
    'compilation_cache', '~/.cache/ssl_pairs/xla',
    'Persistent XLA compilation cache: a rerun, a resume or another config '
    'with the same shapes loads compiled steps instead of recompiling. '
    "'' turns it off; $JAX_COMPILATION_CACHE_DIR, when set, wins.")


def _config_load_error(e: Exception) -> None:
  lines = [l.strip() for l in str(e).strip().splitlines() if l.strip()]
  reason = lines[-1] if lines else type(e).__name__
  print(f'error: cannot load the config file given to --config ({reason}); '
        'pass an existing file such as configs/simclr_sp.py.',
        file=sys.stderr)
  sys.exit(2)


def _flag_error_text(error: Exception) -> str:
  """A flag error in one line: for a config file that raised while loading
  (e.g. an unknown ``:switch``), the flag and the exception's own message,
  not the traceback ml_collections embeds."""
  text = str(error)
  if 'Traceback (most recent call last)' not in text:
    return text.rstrip('.')
  lines = [l.strip() for l in text.splitlines() if l.strip()]
  flag = lines[0].split(': Error whilst parsing')[0]
  raised = [l for l in lines if re.match(r'^[A-Za-z_.]*(Error|Exception): ', l)]
  reason = raised[-1].split(': ', 1)[1] if raised else lines[-1]
  return f'{flag}: {reason.rstrip(".")}'


def _parse_flags(argv):
  """absl's flag parsing, with config mistakes as one-line errors (exit 2)."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f'error: {_flag_error_text(e)}; see python main.py --help.',
          file=sys.stderr)
    sys.exit(2)
  except (OSError, ImportError, SyntaxError) as e:
    _config_load_error(e)
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    detail = str(e).strip('\'"').replace('\\n', ' ').replace('\n', ' ')
    detail = detail.replace("\\'", "'")
    key = re.search(r"'([^']+)'", detail)
    overrides = [a.split('=')[0] for a in argv[1:]
                 if a.startswith('--config.')]
    named = [o for o in overrides
             if key and key.group(1) in o.split('.')] or overrides
    print(f'error: a config override ({", ".join(named) or "--config"}) '
          f'does not fit the config: {detail}; check the key against the '
          'config file, which lists every key.', file=sys.stderr)
    sys.exit(2)


def enable_compilation_cache(jax, directory: str) -> None:
  """Caches every compiled program (even fast ones: CPU steps of a few s)."""
  jax.config.update('jax_compilation_cache_dir', directory)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  import jax  # pylint: disable=g-import-not-at-top
  if _COMPILATION_CACHE.value and not os.environ.get(
      'JAX_COMPILATION_CACHE_DIR'):
    enable_compilation_cache(jax, os.path.expanduser(_COMPILATION_CACHE.value))
  if _MULTIHOST.value:
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value,
                               process_id=_PROCESS_ID.value)
  from ssl_pairs import train  # pylint: disable=g-import-not-at-top
  from ssl_pairs.evals import run as eval_run  # pylint: disable=g-import-not-at-top

  config = _CONFIG.value
  if config is None:
    print('error: no config given; pass one, e.g. '
          '--config=configs/simclr_sp.py (see configs/).', file=sys.stderr)
    sys.exit(2)
  try:
    config.task  # pylint: disable=pointless-statement
  except (OSError, ImportError, SyntaxError) as e:
    _config_load_error(e)
  if config.task == 'eval':
    eval_run.evaluate_checkpoint(config, _WORKDIR.value)
  else:
    workdir = _WORKDIR.value or os.path.join('runs', config.name)
    report = train.run(config, workdir)
    if report:
      print(eval_run.markdown_table(report['results'],
                                    untrained=report.get('untrained')))
      print(f'Results: {os.path.join(workdir, "eval.json")}')


def run(default_config=None):
  """The program: ``python main.py`` / ``ssl-pairs train`` (no default
  config) and ``ssl-pairs eval`` (default ``configs/linear_eval.py``)."""
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  sys.argv = cli.resolve_config_args(sys.argv, default_config)
  if default_config is None:
    flags.mark_flags_as_required(['config'])
  # --help lists the flags of the program absl thinks is running (argv[0]).
  for flag in flags.FLAGS.get_key_flags_for_module(__name__):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  cli.run(main, flags_parser=_parse_flags)


if __name__ == '__main__':
  run()
