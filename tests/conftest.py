"""Shared fixtures: tiny synthetic datasets, smoke configs, the real data dir.

Real-data tests use the ``real_data_dir`` fixture: it skips (with the reason)
when ``$SSL_PAIRS_DATA_DIR`` does not hold the data, and fails instead when
``SSL_PAIRS_REQUIRE_DATA=1`` (as in CI), so CI can never pass by skipping them.
"""

import importlib
import os
import tempfile

# A persistent XLA compilation cache shared by every test and the subprocesses
# they start (set before jax is imported): the suite compiles the same smoke
# steps many times, and a cache hit is ~10× faster than compiling. Cached
# executables are the compiled code itself, so results stay bitwise the same.
# The pytest-xdist workers share it too: jax writes an entry without a lock,
# and a worker that reads one half-written gets a decompression error, which
# jax turns into a warning and a recompile (not a failure).
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', os.path.join(
    tempfile.gettempdir(), f'ssl_pairs_test_xla_cache_{os.getuid()}'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')
# The suite is compile-bound (hundreds of small programs, each run a few
# times), so tests compile with LLVM's optimisations off: the same HLO passes
# and kernels, ~20 % less CPU for the whole suite and under half the compile
# time of the ResNet-50 initialisers. Every comparison in the suite is
# between runs with the same flags or has a float tolerance. To test the optimised build, set it yourself:
# XLA_FLAGS=--xla_backend_optimization_level=2 pytest
if 'xla_backend_optimization_level' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             ' --xla_backend_optimization_level=0').strip()

# The untrained encoder's cached evaluations (train.untrained_cache_path) go
# to a folder of this test session, not the user's ~/.cache.
os.environ.setdefault('SSL_PAIRS_CACHE_DIR',
                      tempfile.mkdtemp(prefix='ssl_pairs_test_cache_'))

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def synthetic_images(num_classes=8, per_class=10, size=16, seed=0):
  """Images whose class decides their colour and stripe pattern, plus noise."""
  rng = np.random.default_rng(seed)
  images, labels = [], []
  yy, xx = np.mgrid[0:size, 0:size]
  for c in range(num_classes):
    colour = rng.uniform(40, 215, size=3)
    period = 2 + c % 4
    stripes = ((xx + (c // 4) * yy) // period) % 2
    for _ in range(per_class):
      img = colour + 40 * stripes[..., None] + rng.normal(0, 12, (size, size, 3))
      images.append(np.clip(img, 0, 255).astype(np.uint8))
      labels.append(c)
  return np.stack(images), np.asarray(labels, np.int64)


@pytest.fixture(scope='session')
def synthetic_npz(tmp_path_factory):
  """Path of an npz with 8 classes × 10 images of 16×16 (one split)."""
  images, labels = synthetic_images()
  path = tmp_path_factory.mktemp('data') / 'synthetic.npz'
  np.savez(path, images=images, labels=labels,
           label_names=np.asarray([f'class{c}' for c in range(8)]))
  return str(path)


def load_config(name, arg='smoke'):
  module = importlib.import_module(f'configs.{name}')
  return module.get_config(arg)


@pytest.fixture
def smoke_config(synthetic_npz):
  """simclr_sp:smoke on the synthetic npz (train and eval)."""
  config = load_config('simclr_sp')
  config.data.dataset = synthetic_npz
  config.data.classes = 'all'
  config.data.pairs_per_class = 0
  config.eval.datasets = synthetic_npz
  config.eval.train_limit = 0
  config.eval.test_limit = 0
  return config


@pytest.fixture(scope='session')
def real_data_dir():
  """The real data dir (../shared/data); skip or fail when it is missing."""
  path = os.environ.get('SSL_PAIRS_DATA_DIR') or os.path.join(
      REPO, '..', 'shared', 'data')
  if os.path.isfile(os.path.join(path, 'cifar10_test.npz')):
    return os.path.abspath(path)
  reason = (f'real data not found in {path}: set SSL_PAIRS_DATA_DIR to the '
            'folder holding cifar10_*.npz and tiny-imagenet-200*')
  if os.environ.get('SSL_PAIRS_REQUIRE_DATA') == '1':
    pytest.fail(reason + ' (SSL_PAIRS_REQUIRE_DATA=1 forbids skipping)')
  pytest.skip(reason)


def read_checkpoint_state(workdir):
  """(step, state as nested dicts) of a run's latest checkpoint, on one device.

  Works whatever device topology wrote the checkpoint.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  from ssl_pairs import checkpoint  # pylint: disable=g-import-not-at-top
  manager = ocp.CheckpointManager(
      checkpoint.checkpoint_dir(workdir),
      item_handlers={'state': ocp.PyTreeCheckpointHandler()},
      options=ocp.CheckpointManagerOptions(read_only=True))
  step = manager.latest_step()
  tree = manager.item_metadata(step)['state'].tree
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  restore_args = jax.tree.map(lambda _: ocp.ArrayRestoreArgs(sharding=device),
                              tree)
  state = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.PyTreeRestore(restore_args=restore_args)))['state']
  manager.close()
  return step, state


def load_launcher(name):
  """launch/<name>.py as a module, loaded once per process (its absl flags
  can be defined only once), with every flag reset to its default."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  key = f'_launcher_{name}'
  if key not in sys.modules:
    spec = importlib.util.spec_from_file_location(
        key, os.path.join(REPO, 'launch', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[key] = module
  flags.FLAGS.unparse_flags()
  flags.FLAGS([name])
  return sys.modules[key]


def few_class_tiny_imagenet(real_data_dir, root_dir, classes):
  """A data dir (returned as a str) whose Tiny-ImageNet is the real one's
  first ``classes`` classes, boxes included: the real folders symlinked under
  a wnids.txt that lists only those classes (the loaders read wnids.txt)."""
  from ssl_pairs.data import sources  # pylint: disable=g-import-not-at-top
  root = sources.find_tiny_imagenet(real_data_dir)
  if root is None:
    reason = f'no tiny-imagenet-200* in {real_data_dir}'
    if os.environ.get('SSL_PAIRS_REQUIRE_DATA') == '1':
      pytest.fail(reason + ' (SSL_PAIRS_REQUIRE_DATA=1 forbids skipping)')
    pytest.skip(reason)
  sub = root_dir / f'tiny-imagenet-200-{classes}'
  sub.mkdir(parents=True)
  with open(os.path.join(root, 'wnids.txt')) as f:
    wnids = sorted(line.strip() for line in f if line.strip())[:classes]
  (sub / 'wnids.txt').write_text('\n'.join(wnids) + '\n')
  for part in ('train', 'val', 'words.txt'):
    if os.path.exists(os.path.join(root, part)):
      os.symlink(os.path.join(root, part), sub / part)
  return str(root_dir)
