"""Downloads and prepares the builtin datasets where :mod:`sources` reads them.

``ssl-pairs prepare-data cifar10 cifar100 stl10 tiny_imagenet`` (the program
``ssl_pairs/tools/prepare_data.py``) calls :func:`prepare` for each name, and a
training or evaluation run whose builtin dataset is missing calls it too
(``data.download=True``, see :func:`ssl_pairs.data.sources.load_split`), so
that installing the package and training is all the set-up there is. None of
the builtin datasets needs TensorFlow.

* ``cifar10``, ``cifar100``, ``stl10``: the official archives of their
  authors (CIFAR's "python version", STL-10's binary one), checked against
  their SHA-256 and MD5, read in memory (only the labelled splits; STL-10's
  unlabelled images are skipped) and written as the npz files
  :func:`ssl_pairs.data.sources.load_split` reads first (keys ``images``
  uint8 [N, H, W, 3], ``labels`` int64, ``label_names``):
  ``cifar10_train_00.npz`` … ``cifar10_train_04.npz`` (``data_batch_1`` …
  ``data_batch_5``) + ``cifar10_test.npz``; ``cifar100_{train,test}.npz``
  (fine labels); ``stl10_{train,test}.npz``. Every file is written under a
  hidden temporary folder in the data directory and renamed into place only
  once all are written, the test split's last: the dataset counts as prepared
  when both splits are there, so an interrupted run never leaves a set that
  looks complete. The archive itself is not kept. Offline, an archive put
  into the data directory by hand under its official name is read from
  there instead (and left there).
* ``tfds:<name>``: TFDS builds it (``download_and_prepare``) in the
  **ArrayRecord** format, the one ``tfds.data_source`` gives random access
  to (TFRecord does not), into ``DATA_DIR/<name>/<version>/``. TFDS's own
  builders of image datasets (``tfds:cifar10`` …) encode images with
  TensorFlow, so building them (not reading them) needs it.
* ``tiny_imagenet`` (TFDS has none): the official zip from Stanford, checked
  against its SHA-256 and unpacked into ``DATA_DIR/tiny-imagenet-200/`` in its
  official layout (``wnids.txt``, ``words.txt``, ``train/<wnid>/images`` with
  ``<wnid>_boxes.txt``, ``val/images`` + ``val/val_annotations.txt``). It is
  unpacked into a hidden temporary folder beside it and renamed into place
  last, so an interrupted run never leaves a folder that looks complete.

Every step says what it downloads, roughly how large, and where it goes;
data that is already there is left alone. Without network the error is one
sentence naming what was tried and how to place the files by hand.
"""

import dataclasses
import hashlib
import http.client
import importlib.util
import io
import os
import pickle
import posixpath
import re
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ssl_pairs.data import layout
from ssl_pairs.errors import UserError

DATASETS = ('cifar10', 'cifar100', 'stl10', 'tiny_imagenet')
# Builtin datasets made from their official archives (no TensorFlow).
ARCHIVE_DATASETS = ('cifar10', 'cifar100', 'stl10')
# TFDS datasets whose TFDS builders encode images with TensorFlow: building
# ``tfds:<one of these>`` without it fails before downloading.
TFDS_BUILTIN = ('cifar10', 'cifar100', 'stl10')

# The official archives. SHA-256 cannot be computed here (no network), so each
# is the value independent public projects record for the same URL, and it
# agrees with the archive's size and widely published MD5 (torchvision's
# ``tgz_md5``), which is checked too: both must match.
# * CIFAR-10 python version, 170,498,071 bytes: SHA-256 as in Keras'
#   ``keras.datasets.cifar10`` (``file_hash``) and in download scripts that
#   record size, SHA-256 and torchvision's MD5 of the same file together.
CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'
CIFAR10_SHA256 = (
    '6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce')
CIFAR10_MD5 = 'c58f30108f718f92721af3b95e74349a'
CIFAR10_BYTES = 170_498_071
# * CIFAR-100 python version, 169,001,437 bytes: SHA-256 as in Keras'
#   ``keras.datasets.cifar100`` and torchvision's prototype datasets
#   (``Cifar100._SHA256``); MD5 torchvision's ``CIFAR100.tgz_md5``.
CIFAR100_URL = 'https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz'
CIFAR100_SHA256 = (
    '85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7')
CIFAR100_MD5 = 'eb9058c3a382ffc7106e4002c42a8d85'
CIFAR100_BYTES = 169_001_437
# * STL-10 binary version, 2,640,397,119 bytes: size and SHA-256 from TFDS's
#   ``datasets/stl10/checksums.tsv`` (same URL); MD5 torchvision's
#   ``STL10.tgz_md5``.
STL10_URL = 'http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz'
STL10_SHA256 = (
    'f31fd99273a1acb8609c8db427cebb1de3f71de77758cdc0e22956e1289b9866')
STL10_MD5 = '91f7769df0f17e558f3565bffb0c7dfb'
STL10_BYTES = 2_640_397_119

TINY_IMAGENET_URL = 'http://cs231n.stanford.edu/tiny-imagenet-200.zip'
# SHA-256 of the official tiny-imagenet-200.zip (248,100,043 bytes). It cannot
# be computed here (no network), so it is the value that independent public
# projects record after downloading the zip from Stanford (e.g. dataset
# receipts and download scripts that assert it, found by searching public
# code for the zip's name). The widely published MD5 of the same zip,
# 90528d7ca1a48142e341f4ef8d21d0de (torchvision-style loaders), is weaker, so
# SHA-256 is what is checked.
TINY_IMAGENET_SHA256 = (
    '6198c8ae015e2b3e007c7841da39ec069199b9aa3bfa943a462022fe5e43c821')
TINY_IMAGENET_BYTES = 248_100_043
TINY_IMAGENET_FOLDER = 'tiny-imagenet-200'
# Rough sizes once prepared, in MiB, for the line printed before a download:
# the npz files (uncompressed uint8 pixels) and the unpacked zip.
_PREPARED_MIB = {'cifar10': 176, 'cifar100': 176, 'stl10': 343,
                 'tiny_imagenet': 450}
# The same for TFDS's own builds (its catalog's sizes).
_TFDS_PREPARED_MIB = {'cifar10': 132, 'cifar100': 132, 'stl10': 1900}
_CHUNK = 1 << 20


def _say(text: str) -> None:
  print(text, flush=True)


def _size(n: Optional[int]) -> str:
  if not n:
    return 'size unknown'
  if n >= 1 << 30:
    return f'{n / (1 << 30):.1f} GiB'
  if n >= 1 << 20:
    return f'{n / (1 << 20):.0f} MiB'
  return f'{n / 1024:.0f} KiB' if n >= 1024 else f'{n} bytes'


def _describe(error: BaseException) -> str:
  text = next((l.strip() for l in str(error).splitlines() if l.strip()), '')
  text = text if len(text) <= 160 else text[:159] + '…'
  return f'{type(error).__name__}: {text}' if text else type(error).__name__


def network_errors() -> tuple:
  """The exception types that mean "could not reach the server".

  Not every OSError: a full disk is an OSError too, and saying "offline"
  for it would send the user looking in the wrong place.
  """
  errors = [urllib.error.URLError, ConnectionError, TimeoutError,
            socket.gaierror, socket.herror, http.client.HTTPException]
  try:
    import requests  # pylint: disable=g-import-not-at-top
    errors.append(requests.RequestException)
  except ImportError:
    pass
  try:
    from tensorflow_datasets.core.download import util as dl_util  # pylint: disable=g-import-not-at-top
    errors.append(dl_util.DownloadError)
  except ImportError:
    pass
  return tuple(errors)


def check_name(name: str) -> str:
  """``name`` if it can be prepared, else a UserError listing what can."""
  if name in DATASETS or (name.startswith('tfds:') and len(name) > 5):
    return name
  raise UserError(f'Cannot prepare {name!r}: name one or more of '
                  f'{", ".join(DATASETS)} or tfds:<name> (a path is data you '
                  'already have, nothing to download).')


def _command(tfds_name: str, data_dir: str) -> str:
  """The prepare-data command of TFDS dataset ``tfds_name`` (``tfds:<name>``:
  the builtin names prepare the official archives instead)."""
  return layout.prepare_command(f'tfds:{tfds_name}', data_dir)


def prepare(name: str, data_dir: str, say: Callable[[str], None] = _say,
            url: Optional[str] = None, sha256: Optional[str] = None) -> str:
  """Downloads and prepares dataset ``name`` in ``data_dir`` unless there.

  Args:
    name: one of :data:`DATASETS` or ``tfds:<name>``.
    data_dir: the data directory (as ``sources.resolve_data_dir`` gives it).
    say: where the status lines go.
    url, sha256: the builtin datasets only: another archive and its SHA-256
      (a mirror, or a test's ``file://`` archive); None = the official ones.
      A SHA-256 of one's own replaces the official MD5 check too.

  Returns:
    The folder the dataset is in.

  Raises:
    UserError: offline, a bad download, or data in the wrong format.
  """
  check_name(name)
  data_dir = os.path.abspath(os.path.expanduser(data_dir))
  if name == 'tiny_imagenet':
    return prepare_tiny_imagenet(data_dir, url=url, sha256=sha256, say=say)
  if name in ARCHIVE_DATASETS:
    return prepare_archive(name, data_dir, url=url, sha256=sha256, say=say)
  return prepare_tfds(name.removeprefix('tfds:'), data_dir, say=say)


# ------------------------------------------------------------------ TFDS ---


def _tfds_downloads(builder):
  """[(url, bytes)] TFDS records for the builder's downloads, or [] unknown.

  TFDS ships them beside each builder (``checksums.tsv``) or in its
  ``url_checksums/<name>.txt``: ``url<TAB>size<TAB>sha256<TAB>filename``.
  ``builder.url_infos`` reads the same files but needs a package that is not
  always installed, hence the direct read.
  """
  import inspect  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  candidates = []
  try:
    candidates.append(os.path.join(os.path.dirname(
        inspect.getfile(type(builder))), 'checksums.tsv'))
  except (TypeError, OSError):
    pass
  root = os.path.dirname(tfds.__file__)
  candidates += [os.path.join(root, 'url_checksums', f'{builder.name}.txt'),
                 os.path.join(root, 'datasets', builder.name, 'checksums.tsv')]
  for path in candidates:
    if not os.path.isfile(path):
      continue
    rows = []
    with open(path) as f:
      for line in f:
        parts = line.strip().split('\t')
        if len(parts) >= 2 and parts[1].isdigit():
          rows.append((parts[0], int(parts[1])))
    if rows:
      return rows
  return []


def tfds_prepared_dir(builder, data_dir: str) -> Optional[str]:
  """The builder's version folder if prepared with ArrayRecord, else None.

  Raises UserError for a copy prepared as TFRecord only: TFDS would reuse it
  ("already prepared") and ``tfds.data_source`` still could not read it.
  """
  from tensorflow_datasets.core import file_adapters  # pylint: disable=g-import-not-at-top
  if not builder.is_prepared():
    return None
  if file_adapters.FileFormat.ARRAY_RECORD in \
      builder.info.available_file_formats():
    return os.fspath(builder.data_dir)
  folder = os.fspath(builder.data_dir)
  raise UserError(
      f'TFDS {builder.name} in {folder} is prepared as TFRecord only, but '
      'random access needs ArrayRecord; convert it with `tfds convert_format '
      f'--dataset_version_dir={folder} --out_file_format=array_record` (needs '
      'TensorFlow), or delete that folder and run '
      f'`{_command(builder.name, data_dir)}`.')


def _tfds_offline_message(name: str, data_dir: str, tried: str,
                          error: BaseException) -> str:
  return (f'Could not download TFDS {name} ({tried}; {_describe(error)}); '
          f'once online rerun `{_command(name, data_dir)}`, or on a machine '
          f'with network run `tfds build {name} --file_format=array_record '
          f'--data_dir=DIR` and copy DIR/{name} into {data_dir}.')


def prepare_tfds(name: str, data_dir: str,
                 say: Callable[[str], None] = _say) -> str:
  """Builds TFDS ``name`` in ArrayRecord format in ``data_dir`` unless there.

  Returns the prepared version folder; one prepared in TFDS's default
  directory, where ``load_tfds`` also looks, counts as prepared.
  """
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise UserError(f'Preparing {name} needs tensorflow-datasets, which is '
                    'not installed; pip install tensorflow-datasets.') from e
  builders = {}
  for d in layout.tfds_dirs(data_dir):
    try:
      builder = builders[d] = tfds.builder(name, data_dir=d)
    except Exception as e:  # pylint: disable=broad-except
      if isinstance(e, network_errors()):
        raise UserError(_tfds_offline_message(
            name, data_dir, 'looking up the dataset', e)) from e
      raise UserError(f'TFDS has no dataset {name!r} ({_describe(e)}); '
                      'check the name in the TFDS catalog '
                      '(https://www.tensorflow.org/datasets/catalog).') from e
    prepared = tfds_prepared_dir(builder, d)
    if prepared:
      extra = '' if d == data_dir else ' (training looks there too)'
      say(f'{name}: already prepared in {prepared}{extra}; nothing to do.')
      return prepared
  builder = builders[data_dir]
  if name in TFDS_BUILTIN and importlib.util.find_spec('tensorflow') is None:
    # Checked before a download that would be wasted: TFDS's builders of
    # these datasets read the archives with tf.io and encode every image
    # with tf.image (reading them back through tfds.data_source does not).
    builtin = (f' (or use the builtin `{name}`, read from its official '
               'archive without TensorFlow: `'
               f'{layout.prepare_command(name, data_dir)}`)'
               if name in ARCHIVE_DATASETS else '')
    raise UserError(
        f'Building TFDS {name} needs TensorFlow, which TFDS uses to encode '
        'the images (training reads them without it); `pip install '
        f'tensorflow-cpu` and rerun `{_command(name, data_dir)}`, or build '
        f'it on another machine with `tfds build {name} '
        f'--file_format=array_record --data_dir=DIR` and copy DIR/{name} '
        f'into {data_dir}{builtin}.')
  downloads = _tfds_downloads(builder)
  urls = ', '.join(u for u, _ in downloads) or 'the files its builder names'
  total = sum(n for _, n in downloads) or None
  prepared_mib = _TFDS_PREPARED_MIB.get(name)
  after = f', about {_size(prepared_mib << 20)} once prepared' \
      if prepared_mib else ''
  say(f'{name}: downloading {urls} ({_size(total)}{after}) and preparing it '
      f'as ArrayRecord in {os.fspath(builder.data_dir)} (TFDS, '
      f'{builder.version}).')
  # A download folder of its own, deleted once the dataset is built: the
  # archives (2.5 GiB for STL-10) are not needed after that. A failed build
  # keeps it, so a rerun reuses what was downloaded.
  download_dir = os.path.join(data_dir, 'downloads', f'ssl_pairs-{name}')
  t0 = time.time()
  try:
    builder.download_and_prepare(
        download_dir=download_dir, file_format='array_record',
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  except UserError:
    raise
  except ModuleNotFoundError as e:
    # TFDS re-raises an encoding failure with its example in the message and
    # without e.name, so the module is read from the message too.
    found = re.search(r"No module named '([\w.]+)'", str(e))
    missing = e.name or (found.group(1) if found else '')
    if not missing.startswith('tensorflow'):
      raise
    package = 'tensorflow-cpu' if missing == 'tensorflow' else missing
    raise UserError(
        f'Building TFDS {name} needs {missing}, which is not installed; `pip '
        f'install {package}` and rerun `{_command(name, data_dir)}`.') from e
  except Exception as e:  # pylint: disable=broad-except
    if isinstance(e, network_errors()):
      raise UserError(_tfds_offline_message(
          name, data_dir, f'downloading {urls}', e)) from e
    if isinstance(e, OSError):
      raise UserError(f'Preparing TFDS {name} in {data_dir} failed '
                      f'({_describe(e)}); free disk space or fix the '
                      'folder\'s permissions and rerun.') from e
    raise
  shutil.rmtree(download_dir, ignore_errors=True)
  folder = os.fspath(builder.data_dir)
  say(f'{name}: prepared in {folder} ({time.time() - t0:.0f} s).')
  return folder


# --------------------------------------------------------- Tiny-ImageNet ---


def tiny_imagenet_prepared(data_dir: str) -> Optional[str]:
  """The full Tiny-ImageNet root in ``data_dir`` (or ``data_dir`` itself when
  it is one), else None. Subsets (``tiny-imagenet-200-*``) do not count:
  asking to prepare Tiny-ImageNet asks for the full set."""
  for root in (os.path.join(data_dir, TINY_IMAGENET_FOLDER), data_dir):
    if os.path.isfile(os.path.join(root, 'wnids.txt')):
      return root
  return None


def _offline_tiny_message(url: str, data_dir: str, error) -> str:
  return (f'Could not download Tiny-ImageNet from {url} ({_describe(error)}); '
          'once online rerun `'
          f'{layout.prepare_command("tiny_imagenet", data_dir)}`, or on '
          'a machine with network download and unzip that file and copy its '
          f'{TINY_IMAGENET_FOLDER} folder (wnids.txt, words.txt, train/, val/) '
          f'into {data_dir}.')


def download_file(url: str, path: str, say: Callable[[str], None] = _say,
                  data_dir: str = '', expected_bytes: Optional[int] = None,
                  offline: Optional[Callable[[BaseException], str]] = None,
                  digests: Sequence = ()) -> str:
  """Downloads ``url`` (http(s) or file://) to ``path``; returns its SHA-256.

  It is streamed to disk in 1 MiB chunks (never held in memory whole).
  Network failures raise the one-sentence UserError ``offline(error)`` gives
  (None: Tiny-ImageNet's); a failure to write (disk full) raises OSError.
  ``digests`` (hashlib objects, e.g. an MD5) are updated with every chunk too.
  """
  if offline is None:
    offline = lambda e: _offline_tiny_message(url, data_dir, e)
  try:
    response = urllib.request.urlopen(url, timeout=60)  # pylint: disable=consider-using-with
  except ValueError as e:  # "unknown url type"
    raise UserError(f'{url!r} is not a URL urllib can open ({e}); pass an '
                    'http(s):// or file:// URL.') from e
  except network_errors() + (OSError,) as e:
    raise UserError(offline(e)) from e
  digest = hashlib.sha256()
  done, next_report = 0, 0.1
  t0 = time.time()
  with response, open(path, 'wb') as f:
    total = expected_bytes
    length = response.headers.get('Content-Length') if response.headers \
        else None
    if length and str(length).isdigit():
      total = int(length)
    while True:
      try:
        chunk = response.read(_CHUNK)
      except network_errors() + (OSError,) as e:
        raise UserError(offline(e)) from e
      if not chunk:
        break
      f.write(chunk)
      digest.update(chunk)
      for extra in digests:
        extra.update(chunk)
      done += len(chunk)
      if total and done / total >= next_report and done < total:
        say(f'  {os.path.basename(url)}: {_size(done)} of {_size(total)} '
            f'({time.time() - t0:.0f} s)')
        next_report += 0.1
  return digest.hexdigest()


def _find_layout_root(folder: str) -> Optional[str]:
  """The folder holding wnids.txt in an unpacked zip (the zip's top folder)."""
  if os.path.isfile(os.path.join(folder, 'wnids.txt')):
    return folder
  subs = [os.path.join(folder, d) for d in sorted(os.listdir(folder))]
  subs = [d for d in subs
          if os.path.isfile(os.path.join(d, 'wnids.txt'))]
  return subs[0] if len(subs) == 1 else None


def prepare_tiny_imagenet(data_dir: str, url: Optional[str] = None,
                          sha256: Optional[str] = None,
                          say: Callable[[str], None] = _say) -> str:
  """Downloads, checks and unpacks Tiny-ImageNet-200 into ``data_dir``.

  Args:
    data_dir: where ``tiny-imagenet-200/`` goes.
    url: the zip (None = :data:`TINY_IMAGENET_URL`; ``file://`` works).
    sha256: its expected SHA-256 (None = :data:`TINY_IMAGENET_SHA256`).
    say: where the status lines go.

  Returns:
    The Tiny-ImageNet root (``data_dir/tiny-imagenet-200``).
  """
  # Read at call time, so a test (or a mirror) can set the module's values.
  url = url or TINY_IMAGENET_URL
  sha256 = (sha256 or TINY_IMAGENET_SHA256).strip().lower()
  data_dir = os.path.abspath(os.path.expanduser(data_dir))
  target = os.path.join(data_dir, TINY_IMAGENET_FOLDER)
  ready = tiny_imagenet_prepared(data_dir)
  if ready:
    say(f'tiny_imagenet: already prepared in {ready}; nothing to do.')
    return ready
  if os.path.exists(target):
    raise UserError(f'{target} exists but has no wnids.txt, so it is not a '
                    'Tiny-ImageNet folder; move or delete it and rerun `'
                    f'{layout.prepare_command("tiny_imagenet", data_dir)}'
                    '`.')
  subsets = sorted(n for n in os.listdir(data_dir)
                   if n.startswith(TINY_IMAGENET_FOLDER + '-')) \
      if os.path.isdir(data_dir) else []
  try:
    os.makedirs(data_dir, exist_ok=True)
  except OSError as e:
    raise UserError(f'Cannot create the data directory {data_dir} '
                    f'({_describe(e)}); pass a writable --data_dir.') from e
  expected = TINY_IMAGENET_BYTES if url == TINY_IMAGENET_URL else None
  say(f'tiny_imagenet: downloading {url} ({_size(expected)}, about '
      f'{_size(_PREPARED_MIB["tiny_imagenet"] << 20)} unpacked) into '
      f'{target}.')
  if subsets:
    say(f'  ({", ".join(subsets)} is there too; once {TINY_IMAGENET_FOLDER} '
        'is, tiny_imagenet reads the full set.)')
  t0 = time.time()
  work = tempfile.mkdtemp(prefix=f'.{TINY_IMAGENET_FOLDER}.incomplete-',
                          dir=data_dir)
  try:
    archive = os.path.join(work, 'tiny-imagenet-200.zip')
    try:
      got = download_file(url, archive, say=say, data_dir=data_dir,
                          expected_bytes=expected)
    except OSError as e:  # Writing it failed (disk full, permissions).
      raise UserError(f'Cannot write the download into {data_dir} '
                      f'({_describe(e)}); free disk space or pass another '
                      '--data_dir.') from e
    if got != sha256:
      raise UserError(
          f'{url} downloaded with SHA-256 {got}, not the expected {sha256}, '
          'so it is damaged or not the official tiny-imagenet-200.zip; '
          f'nothing was unpacked into {data_dir}: rerun to download it again, '
          f'or place an unzipped {TINY_IMAGENET_FOLDER} folder there by '
          'hand.')
    say(f'  checksum ok (SHA-256 {got[:12]}…); unpacking.')
    unpacked = os.path.join(work, 'unpacked')
    try:
      with zipfile.ZipFile(archive) as z:
        z.extractall(unpacked)  # Drops '..' and absolute member paths.
    except (zipfile.BadZipFile, OSError) as e:
      raise UserError(f'Cannot unpack {url} into {data_dir} '
                      f'({_describe(e)}); free disk space, or rerun to '
                      'download it again.') from e
    os.remove(archive)
    root = _find_layout_root(unpacked)
    if root is None or not os.path.isdir(os.path.join(root, 'train')) or \
        not os.path.isfile(os.path.join(root, 'val', 'val_annotations.txt')):
      raise UserError(f'{url} does not hold the Tiny-ImageNet layout '
                      '(tiny-imagenet-200/ with wnids.txt, train/, '
                      'val/val_annotations.txt); pass the official zip.')
    try:
      os.rename(root, target)  # Atomic: the folder appears complete or not.
    except OSError:
      if tiny_imagenet_prepared(data_dir):  # Another process was faster.
        say(f'tiny_imagenet: prepared meanwhile by another process in '
            f'{target}.')
        return target
      raise
  finally:
    shutil.rmtree(work, ignore_errors=True)
  say(f'tiny_imagenet: prepared in {target} ({time.time() - t0:.0f} s).')
  return target


# ------------------------------------- CIFAR-10, CIFAR-100, STL-10 archives ---


@dataclasses.dataclass(frozen=True)
class _Archive:
  title: str
  filename: str  # The official archive's name (also where one placed by hand
                 # in the data directory is looked for).
  outputs: str   # The npz files it becomes, for messages.


_ARCHIVES = {
    'cifar10': _Archive('CIFAR-10', 'cifar-10-python.tar.gz',
                        'cifar10_train_00.npz … cifar10_train_04.npz and '
                        'cifar10_test.npz'),
    'cifar100': _Archive('CIFAR-100', 'cifar-100-python.tar.gz',
                         'cifar100_train.npz and cifar100_test.npz'),
    'stl10': _Archive('STL-10', 'stl10_binary.tar.gz',
                      'stl10_train.npz and stl10_test.npz'),
}


def _official(name: str):
  """(URL, SHA-256, MD5, bytes) of ``name``'s official archive, read at call
  time so that a test (or a mirror) can set the module's values."""
  return {
      'cifar10': (CIFAR10_URL, CIFAR10_SHA256, CIFAR10_MD5, CIFAR10_BYTES),
      'cifar100': (CIFAR100_URL, CIFAR100_SHA256, CIFAR100_MD5,
                   CIFAR100_BYTES),
      'stl10': (STL10_URL, STL10_SHA256, STL10_MD5, STL10_BYTES),
  }[name]


def archive_prepared(name: str, data_dir: str) -> Optional[List[str]]:
  """The npz files of ``name`` in ``data_dir`` if both splits are there
  (what ``sources.load_split`` reads), else None."""
  train = layout.builtin_npz(name, data_dir, 'train')
  test = layout.builtin_npz(name, data_dir, 'test')
  return train + test if train and test else None


def _tfds_copy(name: str, data_dir: str) -> Optional[str]:
  """A TFDS ``name`` prepared as ArrayRecord where ``load_tfds`` looks (read
  when there are no npz files), or None. TFDS is imported only when a folder
  of that name exists."""
  dirs = [d for d in layout.tfds_dirs(data_dir)
          if os.path.isdir(os.path.join(d, name))]
  if not dirs:
    return None
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    from tensorflow_datasets.core import file_adapters  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  for d in dirs:
    try:
      builder = tfds.builder(name, data_dir=d)
      if builder.is_prepared() and file_adapters.FileFormat.ARRAY_RECORD in \
          builder.info.available_file_formats():
        return os.fspath(builder.data_dir)
    except Exception:  # pylint: disable=broad-except
      continue  # Not a usable copy: the npz files are prepared instead.
  return None


def _offline_archive_message(name: str, url: str, data_dir: str,
                             error: BaseException) -> str:
  spec = _ARCHIVES[name]
  return (f'Could not download {spec.title} from {url} ({_describe(error)}); '
          'once online rerun `'
          f'{layout.prepare_command(name, data_dir)}`, or download that '
          f'file on a machine with network and put it into {data_dir} as '
          f'{spec.filename} before rerunning (it is read from there), or copy '
          f'the {spec.outputs} that the command writes elsewhere into '
          f'{data_dir}.')


class _ArraysOnly(pickle.Unpickler):
  """Unpickles CIFAR's batches (dicts of lists, bytes and numpy arrays) and
  nothing else: a pickle can run any code, and a mirror's archive is checked
  only against the checksum its user gives."""
  _ALLOWED = {('numpy', 'ndarray'), ('numpy', 'dtype'),
              ('numpy.core.multiarray', '_reconstruct'),
              ('numpy._core.multiarray', '_reconstruct'),
              ('numpy.core.numeric', '_frombuffer'),
              ('numpy._core.numeric', '_frombuffer'),
              ('_codecs', 'encode')}  # Python 3's protocol-2 bytes.

  def find_class(self, module, name):
    if (module, name) not in self._ALLOWED:
      raise pickle.UnpicklingError(f'{module}.{name} is not allowed')
    if name == 'ndarray':
      return np.ndarray
    if name == 'dtype':
      return np.dtype
    if module == '_codecs':
      import codecs  # pylint: disable=g-import-not-at-top
      return codecs.encode
    # numpy.core is numpy._core's deprecated alias (numpy 2); numpy 1 has
    # only numpy.core.
    core = getattr(np, '_core', None) or np.core
    return getattr(getattr(core, module.rsplit('.', 1)[1]), name)


def _read_members(archive: str, wanted: Sequence[str], label: str,
                  spec: _Archive) -> Dict[str, bytes]:
  """The bytes of the archive's regular files named ``wanted`` (base names),
  read in one pass over the gzip stream (STL-10's unlabelled 2.6 GB member is
  skipped, never held)."""
  found = {}
  try:
    with tarfile.open(archive, 'r|gz') as tar:
      for member in tar:
        base = posixpath.basename(member.name)
        if member.isfile() and base in wanted and base not in found:
          found[base] = tar.extractfile(member).read()
          if len(found) == len(wanted):
            break
  except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
    raise UserError(f'Cannot read {label} ({_describe(e)}); it is damaged or '
                    f'not a .tar.gz: use the official {spec.filename}.') from e
  missing = [w for w in wanted if w not in found]
  if missing:
    raise UserError(f'{label} does not hold the {spec.title} files '
                    f'({", ".join(missing)} missing); use the official '
                    f'{spec.filename}.')
  return found


def _unpickle(data: bytes, member: str, label: str) -> dict:
  try:
    value = _ArraysOnly(io.BytesIO(data), encoding='bytes').load()
  except Exception as e:  # pylint: disable=broad-except
    raise UserError(f'Cannot read {member} in {label} ({_describe(e)}); use '
                    'the official archive (python version).') from e
  if not isinstance(value, dict):
    raise UserError(f'{member} in {label} holds a {type(value).__name__}, not '
                    "CIFAR's dict; use the official archive (python version).")
  return value


def _field(batch: dict, key: bytes, member: str, label: str):
  if key not in batch:
    raise UserError(f'{member} in {label} has no {key.decode()!r} entry '
                    f'(keys {sorted(_names(batch))}); use the '
                    'official archive (python version).')
  return batch[key]


def _names(values) -> List[str]:
  return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _cifar_arrays(batch: dict, member: str, label: str, label_key: bytes,
                  num_classes: int) -> Dict[str, np.ndarray]:
  """images uint8 [N, 32, 32, 3], labels int64 [N] (+ source_path) of one
  CIFAR batch: rows of 3072 bytes, the red plane, then green, then blue,
  each row-major, hence reshape to [N, 3, 32, 32] and move channels last."""
  data = np.asarray(_field(batch, b'data', member, label))
  labels = np.asarray(_field(batch, label_key, member, label), np.int64)
  if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or \
      len(data) != len(labels):
    raise UserError(f'{member} in {label} holds data {data.dtype} '
                    f'{list(data.shape)} for {len(labels)} labels, not uint8 '
                    '[N, 3072]; use the official archive (python version).')
  if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
    raise UserError(f'{member} in {label} has labels {labels.min()}..'
                    f'{labels.max()}, outside the {num_classes} classes of '
                    'its meta file; use the official archive.')
  images = np.ascontiguousarray(
      data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
  arrays = {'images': images, 'labels': labels}
  if b'filenames' in batch and len(batch[b'filenames']) == len(labels):
    # Where each image came from (as the shared npz files' source_path):
    # stable ids for pair files.
    arrays['source_path'] = np.asarray(
        [f'{member}/{n}' for n in _names(batch[b'filenames'])])
  return arrays


def _read_cifar10(archive: str, label: str, write) -> None:
  spec = _ARCHIVES['cifar10']
  batches = [f'data_batch_{i}' for i in range(1, 6)]
  members = _read_members(archive, batches + ['test_batch', 'batches.meta'],
                          label, spec)
  meta = _unpickle(members.pop('batches.meta'), 'batches.meta', label)
  names = np.asarray(_names(_field(meta, b'label_names', 'batches.meta',
                                   label)))
  for i, batch in enumerate(batches):
    arrays = _cifar_arrays(_unpickle(members.pop(batch), batch, label), batch,
                           label, b'labels', len(names))
    write(f'cifar10_train_{i:02d}.npz', label_names=names, **arrays)
  arrays = _cifar_arrays(_unpickle(members.pop('test_batch'), 'test_batch',
                                   label), 'test_batch', label, b'labels',
                         len(names))
  write('cifar10_test.npz', label_names=names, **arrays)


def _read_cifar100(archive: str, label: str, write) -> None:
  spec = _ARCHIVES['cifar100']
  members = _read_members(archive, ['train', 'test', 'meta'], label, spec)
  meta = _unpickle(members.pop('meta'), 'meta', label)
  names = np.asarray(_names(_field(meta, b'fine_label_names', 'meta', label)))
  for split in ('train', 'test'):
    arrays = _cifar_arrays(_unpickle(members.pop(split), split, label), split,
                           label, b'fine_labels', len(names))
    write(f'cifar100_{split}.npz', label_names=names, **arrays)


def _read_stl10(archive: str, label: str, write) -> None:
  """STL-10's labelled splits: ``<split>_X.bin`` uint8 images of 3×96×96
  bytes each, every channel stored column-major (hence reshape to
  [N, 3, 96, 96] = [N, C, x, y] and transpose to [N, y, x, C]);
  ``<split>_y.bin`` one uint8 label 1..10 per image."""
  spec = _ARCHIVES['stl10']
  splits = ('train', 'test')
  members = _read_members(
      archive, [f'{s}_{p}.bin' for s in splits for p in 'Xy'] +
      ['class_names.txt'], label, spec)
  names = np.asarray([l.strip() for l in members.pop(
      'class_names.txt').decode('utf-8', 'replace').splitlines() if l.strip()])
  per_image = 3 * 96 * 96
  for split in splits:
    pixels = np.frombuffer(members.pop(f'{split}_X.bin'), np.uint8)
    labels = np.frombuffer(members.pop(f'{split}_y.bin'), np.uint8).astype(
        np.int64) - 1
    if pixels.size % per_image or pixels.size // per_image != len(labels):
      raise UserError(f'{split}_X.bin in {label} holds {pixels.size} bytes '
                      f'for {len(labels)} labels, not {per_image} per label; '
                      'use the official archive (binary version).')
    if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
      raise UserError(f'{split}_y.bin in {label} has labels '
                      f'{labels.min() + 1}..{labels.max() + 1}, not 1..'
                      f'{len(names)} (class_names.txt); use the official '
                      'archive.')
    images = np.ascontiguousarray(
        pixels.reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1))
    del pixels
    write(f'stl10_{split}.npz', images=images, labels=labels,
          label_names=names)


_READERS = {'cifar10': _read_cifar10, 'cifar100': _read_cifar100,
            'stl10': _read_stl10}


def _hash_file(path: str, digests: Sequence) -> None:
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(_CHUNK), b''):
      for digest in digests:
        digest.update(chunk)


def prepare_archive(name: str, data_dir: str, url: Optional[str] = None,
                    sha256: Optional[str] = None,
                    say: Callable[[str], None] = _say) -> str:
  """Downloads, checks and converts ``name``'s official archive to npz files.

  Args:
    name: ``cifar10``, ``cifar100`` or ``stl10``.
    data_dir: where the npz files go.
    url: the archive (None = the official one; ``file://`` works). An archive
      already in ``data_dir`` under the official file name is used instead.
    sha256: its expected SHA-256 (None = the official archive's, and then
      its official MD5 is checked too).
    say: where the status lines go.

  Returns:
    ``data_dir`` (or the TFDS folder of an ArrayRecord copy already there).
  """
  spec = _ARCHIVES[name]
  official_url, official_sha256, official_md5, official_bytes = \
      _official(name)
  url = url or official_url
  md5 = None if sha256 else official_md5.strip().lower()
  sha256 = (sha256 or official_sha256).strip().lower()
  data_dir = os.path.abspath(os.path.expanduser(data_dir))
  ready = archive_prepared(name, data_dir)
  if ready:
    say(f'{name}: already prepared in {data_dir} '
        f'({", ".join(os.path.basename(p) for p in ready)}); nothing to do.')
    return data_dir
  copy = _tfds_copy(name, data_dir)
  if copy:
    say(f'{name}: already prepared in {copy} (TFDS ArrayRecord, which '
        'training reads when there are no npz files); nothing to do.')
    return copy
  try:
    os.makedirs(data_dir, exist_ok=True)
  except OSError as e:
    raise UserError(f'Cannot create the data directory {data_dir} '
                    f'({_describe(e)}); pass a writable --data_dir.') from e
  placed = os.path.join(data_dir, spec.filename)
  prepared_size = _size(_PREPARED_MIB[name] << 20)
  t0 = time.time()
  work = tempfile.mkdtemp(prefix=f'.{name}.incomplete-', dir=data_dir)
  try:
    md5_digest = hashlib.md5(usedforsecurity=False)
    if os.path.isfile(placed):
      label = placed
      say(f'{name}: reading {placed} ({_size(os.path.getsize(placed))}, '
          'placed there, so nothing is downloaded) into '
          f'{spec.outputs} (about {prepared_size}) in {data_dir}.')
      sha_digest = hashlib.sha256()
      _hash_file(placed, [sha_digest, md5_digest])
      got, archive = sha_digest.hexdigest(), placed
    else:
      label = url
      expected = official_bytes if url == official_url else None
      say(f'{name}: downloading {url} ({_size(expected)}) and preparing it '
          f'as {spec.outputs} (about {prepared_size}) in {data_dir}.')
      archive = os.path.join(work, spec.filename)
      try:
        got = download_file(
            url, archive, say=say, data_dir=data_dir, expected_bytes=expected,
            offline=lambda e: _offline_archive_message(name, url, data_dir, e),
            digests=[md5_digest])
      except OSError as e:  # Writing it failed (disk full, permissions).
        raise UserError(f'Cannot write the download into {data_dir} '
                        f'({_describe(e)}); free disk space or pass another '
                        '--data_dir.') from e
    fix = ('delete or replace it and rerun' if archive == placed else
           'rerun to download it again')
    if got != sha256:
      raise UserError(
          f'{label} has SHA-256 {got}, not the expected {sha256}, so it is '
          f'damaged or not the official {spec.filename}; nothing was written '
          f'into {data_dir}: {fix}, or place the {spec.outputs} there by '
          'hand.')
    if md5 and md5_digest.hexdigest() != md5:
      raise UserError(
          f'{label} has MD5 {md5_digest.hexdigest()}, not the expected {md5} '
          f'(its SHA-256 matched), so it is not the official {spec.filename}; '
          f'nothing was written into {data_dir}: {fix}.')
    say(f'  checksum ok (SHA-256 {got[:12]}…' +
        (f', MD5 {md5[:8]}…' if md5 else '') + '); converting it.')
    written = []

    def write(filename, **arrays):
      # Uncompressed: pixels barely compress, and reading stays fast.
      np.savez(os.path.join(work, filename), **arrays)
      written.append(filename)

    moved = []
    try:
      _READERS[name](archive, label, write)
      # Renamed into place only now, the test split's last: a set without it
      # does not count as prepared (and is prepared again).
      for filename in written:
        os.replace(os.path.join(work, filename),
                   os.path.join(data_dir, filename))
        moved.append(filename)
    except OSError as e:
      for filename in moved:  # No train split without its test split.
        try:
          os.remove(os.path.join(data_dir, filename))
        except OSError:
          pass
      raise UserError(f'Cannot write {spec.outputs} into {data_dir} '
                      f'({_describe(e)}); free disk space or pass another '
                      '--data_dir.') from e
  finally:
    shutil.rmtree(work, ignore_errors=True)
  say(f'{name}: prepared {spec.outputs} in {data_dir} '
      f'({time.time() - t0:.0f} s).')
  if archive == placed:
    say(f'  ({placed} is not needed any more; delete it to free '
        f'{_size(os.path.getsize(placed))}.)')
  return data_dir
