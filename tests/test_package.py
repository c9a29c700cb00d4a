"""The package: the wheel carries what a user outside the checkout needs, the
``ssl-pairs`` command dispatches to the programs, and pyproject.toml's pins
agree with requirements.txt's."""

import glob
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pins(path):
  pins = {}
  for line in open(path):
    line = line.split('#')[0].strip()
    if '==' in line:
      name, version = line.split('==')
      pins[re.sub(r'[-_.]+', '-', name.lower())] = version
  return pins


def _project():
  with open(os.path.join(REPO, 'pyproject.toml'), 'rb') as f:
    return tomllib.load(f)['project']


def test_pyproject_pins_equal_requirements():
  """Every dependency and extra of pyproject.toml is pinned to the version
  requirements*.txt pins (the versions the suite was verified with)."""
  pins = {**_pins(os.path.join(REPO, 'requirements.txt')),
          **_pins(os.path.join(REPO, 'requirements-torch.txt'))}
  project = _project()
  declared = list(project['dependencies'])
  for extra in project['optional-dependencies'].values():
    declared += extra
  seen = set()
  for dep in declared:
    name, version = dep.split('==')
    key = re.sub(r'[-_.]+', '-', name.lower())
    assert pins.get(key) == version, (dep, pins.get(key))
    seen.add(key)
  # Everything requirements.txt pins is a dependency or an extra, except the
  # build tool.
  missing = set(_pins(os.path.join(REPO, 'requirements.txt'))) - seen
  assert missing == {'setuptools'}, missing


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
  """The wheel, built from a copy of the package's sources (no build folder
  left in the checkout) without fetching anything."""
  src = tmp_path_factory.mktemp('src')
  for name in ('pyproject.toml', 'README.md'):
    shutil.copy(os.path.join(REPO, name), src)
  ignore = shutil.ignore_patterns('__pycache__', '*.pyc')
  for name in ('ssl_pairs', 'configs', 'launch'):
    shutil.copytree(os.path.join(REPO, name), src / name, ignore=ignore)
  out = tmp_path_factory.mktemp('dist')
  proc = subprocess.run(
      [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-index',
       '--no-build-isolation', '-q', '-w', str(out), str(src)],
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  (path,) = glob.glob(str(out / '*.whl'))
  return path


def test_wheel_holds_package_data(wheel):
  names = set(zipfile.ZipFile(wheel).namelist())
  expected = {
      'ssl_pairs/resources/tiny_imagenet_cifar10_overlap.txt',  # class lists
      'ssl_pairs/cli.py', 'ssl_pairs/tools/main.py',
      'ssl_pairs/tools/command.py', 'launch/run_study.py',
      'launch/studies/runner.py',
      'configs/common.py', 'configs/simclr_sp.py', 'configs/linear_eval.py',
      'launch/reproduce.py', 'launch/cpu_scale.py',
  }
  assert expected <= names, expected - names
  assert not [n for n in names if n.startswith('tests/')]
  entry_points = [n for n in names if n.endswith('entry_points.txt')]
  text = zipfile.ZipFile(wheel).read(entry_points[0]).decode()
  assert 'ssl-pairs = ssl_pairs.tools.command:main' in text


def test_installed_wheel_works_outside_the_checkout(wheel, tmp_path):
  """Installed into a bare folder and run from another one: the modules come
  from the wheel (not the checkout), the class lists are found, a config
  name resolves to the wheel's config file and builds, and the command runs."""
  site = tmp_path / 'site'
  proc = subprocess.run(
      [sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index', '-q',
       '--target', str(site), wheel], capture_output=True, text=True,
      timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  elsewhere = tmp_path / 'elsewhere'
  elsewhere.mkdir()
  env = dict(os.environ, PYTHONPATH=str(site), JAX_PLATFORMS='cpu')
  script = (
      'import os, sys\n'
      'import ssl_pairs, configs, launch\n'
      'from ssl_pairs.data import pairs\n'
      'from ssl_pairs import cli as main\n'
      'site = sys.argv[1]\n'
      'for m in (ssl_pairs, configs, launch):\n'
      '  assert m.__file__.startswith(site), m.__file__\n'
      'assert os.path.isfile(os.path.join(pairs.RESOURCES, '
      '"tiny_imagenet_cifar10_overlap.txt"))\n'
      'path = main.resolve_config_path("configs/simclr_sp.py:smoke")\n'
      'assert path.startswith(site) and path.endswith("simclr_sp.py:smoke"), '
      'path\n'
      'assert main.resolve_config_path("linear_eval").startswith(site)\n'
      'from configs import simclr_sp\n'
      'c = simclr_sp.get_config("smoke")\n'
      'print("ok", c.method.name, c.name)\n')
  proc = subprocess.run([sys.executable, '-c', script, str(site)],
                        cwd=elsewhere, env=env, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.startswith('ok simclr'), proc.stdout
  command = site / 'bin' / 'ssl-pairs'
  proc = subprocess.run([sys.executable, str(command), '--help'],
                        cwd=elsewhere, env=env, capture_output=True, text=True,
                        timeout=60)
  assert proc.returncode == 0, proc.stderr
  for name in ('train', 'eval', 'reproduce', 'build-pairs', 'prepare-data',
               'export', 'study'):
    assert f'  {name} ' in proc.stdout
  proc = subprocess.run([sys.executable, str(command), 'train', '--help'],
                        cwd=elsewhere, env=env, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert '--config:' in proc.stdout and '--workdir:' in proc.stdout


def test_command_dispatch_errors():
  """No command: usage and exit 2; an unknown one: one sentence, exit 2."""
  for args, code in (([], 2), (['--help'], 0), (['fit'], 2)):
    proc = subprocess.run([sys.executable, '-m', 'ssl_pairs', *args],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == code, (args, proc.stderr)
  assert "unknown command 'fit'" in proc.stderr
  assert proc.stderr.count('\n') == 1


def test_config_arguments_resolve(tmp_path):
  """A path that exists is kept; a name or a checkout-relative path that does
  not exist here is found among the installed configs, switches kept;
  ``eval`` adds configs/linear_eval.py only when no --config is given."""
  from ssl_pairs import cli as main  # pylint: disable=g-import-not-at-top
  configs_dir = main.installed_configs_dir()
  own = tmp_path / 'mine.py'
  own.write_text('')
  assert main.resolve_config_path(f'{own}:x') == f'{own}:x'
  want = os.path.join(configs_dir, 'byol_sp.py')
  assert main.resolve_config_path('byol_sp:smoke') == want + ':smoke'
  assert main.resolve_config_path('byol_sp.py') == want
  assert main.resolve_config_path('no_such_config') == 'no_such_config'
  args = main.resolve_config_args(['p', '--config.restore=w'],
                                   'configs/linear_eval.py')
  assert args[1].startswith('--config=') and args[2] == '--config.restore=w'
  assert os.path.isfile(args[1][len('--config='):])
  args = main.resolve_config_args(['p', '--config', 'byol_sp'],
                                   'configs/linear_eval.py')
  assert args == ['p', '--config', want]
