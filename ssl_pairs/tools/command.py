"""The ``ssl-pairs`` command (``python -m ssl_pairs`` too): ``ssl-pairs
COMMAND [FLAGS]`` runs that command's program with the flags as its own."""

import sys

from ssl_pairs.cli import HELP_FLAGS

# ``ssl-pairs <command>``: each command is an existing program, run with the
# remaining arguments as its own (the same flags as ``python main.py``,
# ``python launch/reproduce.py``, ``python -m ssl_pairs.tools.<name>``).
COMMANDS = {
    'train': ('ssl_pairs.tools.main', None,
              'train and evaluate a config (python main.py)'),
    'eval': ('ssl_pairs.tools.main', 'configs/linear_eval.py',
             'linear probe + kNN of a trained workdir: '
             '--config.restore=WORKDIR'),
    'reproduce': ('launch.reproduce', None,
                  "reproduce a paper's table at CPU scale (launch/reproduce.py)"),
    'build-pairs': ('ssl_pairs.tools.build_pairs', None,
                    'build and save a semantic/mined pair file'),
    'prepare-data': ('ssl_pairs.tools.prepare_data', None,
                     'download and prepare datasets: cifar10 cifar100 stl10 '
                     'tiny_imagenet'),
    'export': ('ssl_pairs.tools.export', None,
               "write a workdir's encoder as torchvision/timm safetensors"),
    'study': ('launch.run_study', None,
              'run a declared study (launch/studies/): --study=NAME, --list'),
}


def usage() -> str:
  width = max(len(c) for c in COMMANDS)
  lines = ['usage: ssl-pairs COMMAND [FLAGS]   (ssl-pairs COMMAND --help '
           'lists its flags)', '', 'commands:']
  lines += [f'  {c:<{width}}  {text}' for c, (_, _, text) in COMMANDS.items()]
  return '\n'.join(lines)


def main(argv=None):
  """The ``ssl-pairs`` console script."""
  import runpy  # pylint: disable=g-import-not-at-top
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1].lstrip('-') in HELP_FLAGS + ('h',):
    print(usage())
    sys.exit(0 if len(argv) >= 2 else 2)
  command = argv[1]
  if command not in COMMANDS:
    print(f'error: unknown command {command!r}; use one of '
          f'{", ".join(COMMANDS)} (ssl-pairs --help).', file=sys.stderr)
    sys.exit(2)
  module, default_config, _ = COMMANDS[command]
  sys.argv = [f'ssl-pairs {command}', *argv[2:]]
  if module == 'ssl_pairs.tools.main':
    from ssl_pairs.tools import main as program  # pylint: disable=g-import-not-at-top
    program.run(default_config)
    return
  runpy.run_module(module, run_name='__main__', alter_sys=True)


if __name__ == '__main__':
  main()
