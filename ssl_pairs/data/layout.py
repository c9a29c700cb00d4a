"""Where the builtin datasets' files lie in a data folder, and the command
that prepares them: what the loaders (:mod:`ssl_pairs.data.sources`) and the
preparer (:mod:`ssl_pairs.data.prepare`) both need, so neither imports the
other for it."""

import glob
import os
from typing import Optional, Sequence


def prepare_command(name: str, data_dir: str) -> str:
  """The command that downloads and prepares dataset ``name`` in ``data_dir``
  (:mod:`ssl_pairs.data.prepare`), as the errors for missing data name it."""
  return f'ssl-pairs prepare-data {name} --data_dir={data_dir}'


def cifar10_npz(data_dir: str, split: str):
  """The CIFAR-10 npz shards of ``split`` in ``data_dir`` (sorted; maybe [])."""
  pattern = 'cifar10_train_*.npz' if split == 'train' else 'cifar10_test.npz'
  return sorted(glob.glob(os.path.join(data_dir, pattern)))


def npz_pattern(name: str, split: str) -> str:
  """The file name (glob) of builtin ``name``'s npz files of ``split``."""
  part = 'train' if split == 'train' else 'test'
  if name == 'cifar10':
    return 'cifar10_train_*.npz' if part == 'train' else 'cifar10_test.npz'
  return f'{name}_{part}.npz'


def builtin_npz(name: str, data_dir: str, split: str):
  """The npz files of builtin ``name`` (one of :data:`NPZ_NAMES`) and
  ``split`` ('train', else the test split) in ``data_dir`` (sorted; maybe
  [])."""
  if name == 'cifar10':
    return cifar10_npz(data_dir, split)
  path = os.path.join(data_dir, npz_pattern(name, split))
  return [path] if os.path.isfile(path) else []


def tfds_dirs(data_dir: str):
  """Where :func:`load_tfds` looks: ``data_dir``, then TFDS's default dir."""
  dirs = [data_dir]
  default_dir = os.path.expanduser(
      os.environ.get('TFDS_DATA_DIR', '~/tensorflow_datasets'))
  if default_dir not in dirs:
    dirs.append(default_dir)
  return dirs


def tfrecord_copy(name: str, dirs: Sequence[str]) -> Optional[str]:
  """The folder of a TFRecord-prepared copy of TFDS ``name`` in ``dirs``, or
  None: TFDS's "not ArrayRecord" error alone does not say a copy exists."""
  base = name.split(':')[0]  # 'name/config:1.0.0' lives in name/config/1.0.0.
  for d in dirs:
    folder = os.path.join(d, base)
    if os.path.isdir(folder) and glob.glob(
        os.path.join(folder, '**', '*.tfrecord*'), recursive=True):
      return folder
  return None
