r"""Downloads and prepares datasets where training looks for them.

  ssl-pairs prepare-data cifar10 cifar100 stl10 tiny_imagenet [--data_dir=DIR]
  python -m ssl_pairs.tools.prepare_data tiny_imagenet --data_dir=DIR

Names: ``cifar10``, ``cifar100``, ``stl10`` (their authors' official
archives, checked against their SHA-256 and MD5 and converted, without
TensorFlow, to the npz files training reads: ``DIR/cifar10_train_00.npz`` …
``cifar10_train_04.npz`` + ``cifar10_test.npz``, ``cifar100_{train,test}.npz``,
``stl10_{train,test}.npz``; offline, put the archive into ``DIR`` under its
official name and it is read from there), ``tiny_imagenet`` (the official
zip, checked against its SHA-256 and unpacked into
``DIR/tiny-imagenet-200/``) and ``tfds:<name>`` (any TFDS dataset, built by
TFDS as ArrayRecord, the format ``tfds.data_source`` reads; TFDS's image
datasets need TensorFlow to be built). ``DIR`` defaults to where training
looks: ``$SSL_PAIRS_DATA_DIR``, else ``$TFDS_DATA_DIR``, else
``~/tensorflow_datasets``. ``--<name>_url`` and ``--<name>_sha256`` (e.g.
``--cifar10_url``) give a mirror of a builtin dataset's archive (or a
``file://`` URL) and its SHA-256.

Each dataset says what it downloads, roughly how large, and where it goes;
one that is already prepared is left alone. Training does the same by itself
for a missing builtin dataset (``data.download=True``); this command prepares
them ahead, e.g. before going offline. See :mod:`ssl_pairs.data.prepare`.
"""

from typing import Dict, Optional

from absl import flags

from ssl_pairs.data import prepare as prepare_lib
from ssl_pairs.data import sources as sources_lib
from ssl_pairs.errors import UserError

FLAGS = flags.FLAGS
# The datasets made from an archive: their --<name>_url and --<name>_sha256
# default to these constants of prepare_lib.
_ARCHIVE_FLAGS = {'cifar10': ('CIFAR10_URL', 'CIFAR10_SHA256'),
                  'cifar100': ('CIFAR100_URL', 'CIFAR100_SHA256'),
                  'stl10': ('STL10_URL', 'STL10_SHA256')}
_FLAG_NAMES = ['--data_dir'] + [f'--{n}_{k}' for n in (
    *_ARCHIVE_FLAGS, 'tiny_imagenet') for k in ('url', 'sha256')]


def _define_flags():
  """Only when run as a program: importing this module defines no flags, so
  tests (and other programs, e.g. build_pairs with its own --data_dir) can
  import it without a clash of names."""
  flags.DEFINE_string(
      'data_dir', '', "Where the datasets go; '' = $SSL_PAIRS_DATA_DIR, else "
      '$TFDS_DATA_DIR, else ~/tensorflow_datasets (where training looks).')
  flags.DEFINE_string('tiny_imagenet_url', prepare_lib.TINY_IMAGENET_URL,
                      'The Tiny-ImageNet zip (a mirror, or a file:// URL).')
  flags.DEFINE_string(
      'tiny_imagenet_sha256', prepare_lib.TINY_IMAGENET_SHA256,
      "SHA-256 the zip must have (the official zip's by default; give a "
      "mirror's own if it repacked it).")
  for name, (url, sha256) in _ARCHIVE_FLAGS.items():
    flags.DEFINE_string(f'{name}_url', getattr(prepare_lib, url),
                        f'The {name} archive (a mirror, or a file:// URL).')
    flags.DEFINE_string(
        f'{name}_sha256', getattr(prepare_lib, sha256),
        "SHA-256 the archive must have (the official archive's by default, "
        "whose MD5 is checked too; give a mirror's own if it repacked it).")


def _flag(name: str, default):
  return FLAGS[name].value if name in FLAGS else default


def _override(flag: str, constant: str) -> Optional[str]:
  """Flag ``flag``'s value where it is defined and differs from
  ``prepare_lib.<constant>`` (its default), else None: the official archive,
  whose MD5 is then checked too."""
  value = _flag(flag, None)
  return value if value and value != getattr(prepare_lib, constant) else None


def main(argv, data_dir: Optional[str] = None,
         tiny_imagenet_url: Optional[str] = None,
         tiny_imagenet_sha256: Optional[str] = None,
         urls: Optional[Dict[str, str]] = None,
         sha256s: Optional[Dict[str, str]] = None):
  """Prepares each dataset named on the command line (``argv[1:]``).

  The keyword arguments stand in for the flags when called from Python
  (None = the flag's value, or its default when the flags are not defined);
  ``urls`` and ``sha256s`` map cifar10 / cifar100 / stl10 to an archive and
  its SHA-256 (``--<name>_url``, ``--<name>_sha256``).
  """
  names = list(argv[1:])
  if not names:
    raise UserError('Name the datasets to prepare, e.g. `ssl-pairs '
                    'prepare-data cifar10 cifar100 stl10 tiny_imagenet` (or '
                    'tfds:<name>).')
  for name in names:  # Every name is checked before anything is downloaded.
    if name.startswith('-'):
      raise UserError(f'Unknown flag {name}; the flags are '
                      f'{", ".join(_FLAG_NAMES)}.')
    prepare_lib.check_name(name)
  data_dir = sources_lib.resolve_data_dir(
      data_dir if data_dir is not None else _flag('data_dir', ''))
  url = tiny_imagenet_url or _flag('tiny_imagenet_url', None)
  sha256 = tiny_imagenet_sha256 or _flag('tiny_imagenet_sha256', None)
  for name in dict.fromkeys(names):
    if name == 'tiny_imagenet':
      prepare_lib.prepare(name, data_dir, url=url, sha256=sha256)
    elif name in _ARCHIVE_FLAGS:
      url_constant, sha256_constant = _ARCHIVE_FLAGS[name]
      prepare_lib.prepare(
          name, data_dir,
          url=(urls or {}).get(name) or _override(f'{name}_url',
                                                  url_constant),
          sha256=(sha256s or {}).get(name) or _override(f'{name}_sha256',
                                                        sha256_constant))
    else:
      prepare_lib.prepare(name, data_dir)


if __name__ == '__main__':
  _define_flags()
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
