"""Random-access labelled image sources: npz arrays, image folders, TFDS.

Every source is an :class:`ImageSource`: ``len(src)``, ``src[i]`` → uint8
[S, S, 3] RGB at the configured resolution, plus ``labels``, ``class_names`` and,
where the data has them, ``paths`` (relative to the dataset root, for pair
files) and ``boxes`` (Tiny-ImageNet object boxes, kept for later evaluations).

Dataset names understood by :func:`load_split`:

* ``cifar10`` — the ``cifar10_train_*.npz`` / ``cifar10_test.npz`` shards in the
  data directory, else a TFDS ``cifar10`` prepared as ArrayRecord;
* ``cifar100`` — ``cifar100_train.npz`` / ``cifar100_test.npz`` (fine labels)
  in the data directory, else a TFDS ``cifar100`` prepared as ArrayRecord;
* ``stl10`` — ``stl10_train.npz`` / ``stl10_test.npz`` (the labelled splits)
  in the data directory, else a TFDS ``stl10`` prepared as ArrayRecord;
* ``tiny_imagenet`` — the official Tiny-ImageNet-200 folder layout (the folder
  ``tiny-imagenet-200`` or ``tiny-imagenet-200-*`` in the data directory, or a
  path to it); splits ``train`` and ``val``;
* ``tfds:<name>`` — TFDS ``data_source`` over prepared ArrayRecord data (in
  the data directory, else TFDS's default one);
* a path to an ``.npz`` file with ``images``/``labels`` (one split), or to an
  image folder ``root/<class>/*.{jpg,jpeg,png}`` (one split) or
  ``root/{train,test|val}/<class>/...`` (two splits).

Where the data lives: ``config.data.data_dir``, else ``$SSL_PAIRS_DATA_DIR``,
else TFDS's default data directory (see :func:`resolve_data_dir`). A builtin
dataset that is not there is downloaded and prepared by
:mod:`ssl_pairs.data.prepare` (the npz files above, from the official CIFAR
and STL-10 archives and without TensorFlow; Tiny-ImageNet from its zip) when
``load_split(..., download=True)`` (what training and evaluation pass for
``data.download=True``); otherwise the error names the command that prepares
it (:func:`prepare_command`).
"""

import concurrent.futures
import dataclasses
import functools
import glob
import os
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image

from ssl_pairs.data.layout import (  # pylint: disable=unused-import
    builtin_npz, cifar10_npz, npz_pattern, prepare_command, tfds_dirs,
    tfrecord_copy)
from ssl_pairs.errors import UserError

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')
# Builtin datasets read from npz files (what ssl_pairs.data.prepare writes),
# else from a TFDS copy prepared as ArrayRecord.
NPZ_NAMES = ('cifar10', 'cifar100', 'stl10')
BUILTIN_NAMES = ('cifar10', 'tiny_imagenet', 'cifar100', 'stl10')
_TITLES = {'cifar10': 'CIFAR-10', 'cifar100': 'CIFAR-100', 'stl10': 'STL-10'}
# Folders of at most this many pixels are decoded into memory up front (fast
# random access for many epochs); larger ones are decoded image by image.
_PRELOAD_MAX_BYTES = 4 << 30


def resolve_data_dir(configured: Optional[str] = None) -> str:
  """The data directory: the config's, else $SSL_PAIRS_DATA_DIR, else TFDS's."""
  if configured:
    return os.path.expanduser(configured)
  if os.environ.get('SSL_PAIRS_DATA_DIR'):
    return os.path.expanduser(os.environ['SSL_PAIRS_DATA_DIR'])
  return os.path.expanduser(
      os.environ.get('TFDS_DATA_DIR', '~/tensorflow_datasets'))


def _where_hint(data_dir: str) -> str:
  return (f'set SSL_PAIRS_DATA_DIR or --config.data.data_dir to the folder '
          f'that holds it (looked in {data_dir})')


@dataclasses.dataclass
class ImageSource:
  """Labelled images with random access, all at one square resolution.

  Attributes:
    name: dataset name (a builtin name or the file/folder name).
    split: split name.
    labels: int64 [N] class indices into ``class_names``.
    class_names: class names.
    image_size: side of the square uint8 images returned by ``__getitem__``.
    images: uint8 [N, S, S, 3] when held in memory, else None.
    loader: fn(i) → uint8 [S, S, 3] used when ``images`` is None.
    paths: per-image paths relative to ``root`` (None when unknown).
    boxes: int [N, 4] (x0, y0, x1, y1) object boxes in original pixels, or None.
    root: dataset root directory (for pair files), or None.
    class_ids: alternative class identifiers (Tiny-ImageNet wnids), or None.
  """
  name: str
  split: str
  labels: np.ndarray
  class_names: Sequence[str]
  image_size: int
  images: Optional[np.ndarray] = None
  loader: Optional[Callable[[int], np.ndarray]] = None
  paths: Optional[Sequence[str]] = None
  boxes: Optional[np.ndarray] = None
  root: Optional[str] = None
  class_ids: Optional[Sequence[str]] = None

  def __len__(self) -> int:
    return len(self.labels)

  def __getitem__(self, index: int) -> np.ndarray:
    if self.images is not None:
      return self.images[index]
    return self.loader(int(index))

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  def gather(self, indices) -> np.ndarray:
    """uint8 [len(indices), S, S, 3] images at ``indices``."""
    if self.images is not None:
      return self.images[np.asarray(indices)]
    return np.stack([self[i] for i in indices])

  def subset(self, indices) -> 'ImageSource':
    """A source holding only ``indices`` (in that order)."""
    indices = np.asarray(indices, np.int64)
    loader = None
    if self.images is None:
      parent = self.loader
      loader = lambda i: parent(int(indices[i]))
    return dataclasses.replace(
        self,
        labels=self.labels[indices],
        images=None if self.images is None else self.images[indices],
        loader=loader,
        paths=None if self.paths is None else [self.paths[i] for i in indices],
        boxes=None if self.boxes is None else self.boxes[indices])


def object_crops(source: ImageSource) -> ImageSource:
  """The source with each image cut to its object box (made square around
  the box's centre, clipped to the image) and resized back to its size.

  Pretraining on these removes the object-centric bias question's confound:
  the object fills the frame (Purushwalkam & Gupta's object-centric study).
  Needs boxes (Tiny-ImageNet train); they are in original 64-px units.
  """
  if source.boxes is None:
    raise UserError(f'data.object_crops needs object boxes, which '
                    f'{source.name} {source.split} does not have; use '
                    'tiny_imagenet (train) or set data.object_crops=False.')
  size = source.image_size
  scale = size / 64.0
  boxes = np.asarray(source.boxes, np.float64)
  boxes[:, 2:] += 1  # Tiny-ImageNet boxes are inclusive: [0, 0, 63, 63] = all.
  boxes *= scale

  def crop(i):
    x0, y0, x1, y1 = boxes[i]
    side = min(max(x1 - x0, y1 - y0, 1.0), size)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(min(max(cx - side / 2, 0), size - side)))
    top = int(round(min(max(cy - side / 2, 0), size - side)))
    side = int(round(side))
    image = Image.fromarray(source[i])
    return np.asarray(image.resize((size, size), Image.BICUBIC,
                                   box=(left, top, left + side, top + side)))

  images = np.stack([crop(i) for i in range(len(source))])
  full = np.tile(np.asarray([[0, 0, 63, 63]], np.int64), (len(source), 1))
  return dataclasses.replace(source, name=f'{source.name} (object crops)',
                             images=images, loader=None, boxes=full)


def to_rgb_uint8(image, size: Optional[int]) -> np.ndarray:
  """Converts a PIL image or array (gray, palette, RGBA, RGB) to uint8 RGB.

  Args:
    image: PIL image, or uint8 array [H, W], [H, W, 1], [H, W, 3] or [H, W, 4].
    size: output side (square, bicubic and antialiased), or None to keep size.

  Returns:
    uint8 [size, size, 3].
  """
  if not isinstance(image, Image.Image):
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
      image = image[..., 0]
    image = Image.fromarray(image)
  if image.mode != 'RGB':
    # Palette images with transparency must go through RGBA first (PIL warns
    # otherwise); RGBA drops alpha, L/LA/P/CMYK/I;16 map to RGB.
    if image.mode == 'P':
      image = image.convert('RGBA')
    image = image.convert('RGB')
  if size is not None and image.size != (size, size):
    image = image.resize((size, size), Image.BICUBIC)
  return np.asarray(image, dtype=np.uint8)


def _resize_all(images: np.ndarray, size: Optional[int]) -> np.ndarray:
  if size is None or images.shape[1:3] == (size, size):
    return images
  return np.stack([to_rgb_uint8(x, size) for x in images])


def _check_images_array(images: np.ndarray, where: str) -> np.ndarray:
  """Validates an [N, H, W, C] uint8 array and returns it as RGB."""
  if images.dtype != np.uint8:
    raise UserError(
        f'{where}: images must be uint8 (0–255) but are {images.dtype}; '
        'convert them, e.g. with (x * 255).round().astype(np.uint8).')
  if images.ndim == 3:  # [N, H, W] grayscale
    images = images[..., None]
  if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
    raise UserError(
        f'{where}: images must have shape [N, H, W, 3] (or 1/4 channels) but '
        f'have shape {list(images.shape)}; store channels last.')
  if images.shape[-1] == 1:
    images = np.repeat(images, 3, axis=-1)
  elif images.shape[-1] == 4:
    images = images[..., :3]
  return images


@functools.lru_cache(maxsize=8)
def _read_npz(path: str):
  """Reads images/labels/label_names/source_path of one npz (cached)."""
  try:
    with np.load(path, allow_pickle=False) as z:
      if 'images' not in z.files or 'labels' not in z.files:
        raise UserError(
            f'{path} has keys {sorted(z.files)} but needs "images" and '
            '"labels"; save it with np.savez(path, images=..., labels=...).')
      images = _check_images_array(z['images'], path)
      labels = np.asarray(z['labels']).astype(np.int64).reshape(-1)
      names = [str(n) for n in z['label_names']] if 'label_names' in z.files \
          else None
      paths = [str(p) for p in z['source_path']] if 'source_path' in z.files \
          else None
  except UserError:
    raise
  except Exception as e:  # zipfile/LZMA/format errors of damaged files.
    raise UserError(f'Cannot read {path} ({type(e).__name__}: {e}); the file '
                    'is truncated or not an npz archive, re-copy it.') from e
  if len(images) != len(labels):
    raise UserError(f'{path} holds {len(images)} images but {len(labels)} '
                    'labels; they must match one to one.')
  return images, labels, names, paths


def load_npz(paths: Sequence[str], name: str, split: str,
             image_size: Optional[int]) -> ImageSource:
  """Concatenates npz files with ``images``/``labels`` into one source."""
  parts = [_read_npz(p) for p in paths]
  images = np.concatenate([p[0] for p in parts])
  labels = np.concatenate([p[1] for p in parts])
  names = parts[0][2]
  if names is None:
    names = [str(i) for i in range(int(labels.max()) + 1 if len(labels) else 0)]
  if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
    raise UserError(f'{paths[0]}: labels must lie in [0, {len(names)}) to '
                    f'index label_names, found {labels.min()}..{labels.max()}.')
  src_paths = None
  if all(p[3] is not None for p in parts):
    src_paths = sum((p[3] for p in parts), [])
  size = image_size or images.shape[1]
  return ImageSource(name=name, split=split, labels=labels, class_names=names,
                     image_size=size, images=_resize_all(images, size),
                     paths=src_paths, root=os.path.dirname(paths[0]))


def _decode_file(path: str, size: Optional[int]) -> np.ndarray:
  try:
    with Image.open(path) as im:
      return to_rgb_uint8(im, size)
  except FileNotFoundError as e:
    raise UserError(f'Image {path} is gone (deleted or moved after the run '
                    'started); put it back, or rebuild the pair file without '
                    'it — the last checkpoint is kept, so the rerun '
                    'resumes.') from e
  except (OSError, ValueError) as e:
    raise UserError(f'Cannot decode image {path} ({e}); remove or replace '
                    'the file.') from e


def _folder_source(root: str, files: Sequence[str], labels, class_names,
                   name: str, split: str, image_size: Optional[int],
                   boxes=None) -> ImageSource:
  """A source over image files; decoded into memory when small enough."""
  if image_size is None:
    with Image.open(os.path.join(root, files[0])) as im:
      image_size = max(im.size)
  full = [os.path.join(root, f) for f in files]
  labels = np.asarray(labels, np.int64)
  src = ImageSource(name=name, split=split, labels=labels,
                    class_names=list(class_names), image_size=image_size,
                    loader=lambda i: _decode_file(full[i], image_size),
                    paths=list(files), root=root, boxes=boxes)
  if len(full) * image_size * image_size * 3 <= _PRELOAD_MAX_BYTES:
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
      src.images = np.stack(list(pool.map(
          lambda p: _decode_file(p, image_size), full, chunksize=256)))
  return src


def _class_folders(root: str):
  return sorted(d for d in os.listdir(root)
                if os.path.isdir(os.path.join(root, d)))


def load_image_folder(root: str, name: str, split: str,
                      image_size: Optional[int]) -> ImageSource:
  """Images in ``root/<class>/**/*.{jpg,jpeg,png,...}``; classes sorted by name."""
  classes = _class_folders(root)
  if not classes:
    raise UserError(f'{root} has no class sub-folders; an image folder must '
                    'look like root/<class>/<image>.jpg.')
  files, labels = [], []
  for c, cls in enumerate(classes):
    found = sorted(
        os.path.relpath(p, root)
        for p in glob.glob(os.path.join(root, cls, '**', '*'), recursive=True)
        if p.lower().endswith(IMAGE_EXTENSIONS))
    if not found:
      raise UserError(f'Class folder {os.path.join(root, cls)} holds no '
                      f'images ({"/".join(IMAGE_EXTENSIONS)}); add images or '
                      'remove the folder.')
    files += found
    labels += [c] * len(found)
  return _folder_source(root, files, labels, classes, name, split, image_size)


def find_tiny_imagenet(data_dir: str) -> Optional[str]:
  """The Tiny-ImageNet root in ``data_dir`` (full set preferred), or None."""
  if os.path.isfile(os.path.join(data_dir, 'wnids.txt')):
    return data_dir
  candidates = sorted(glob.glob(os.path.join(data_dir, 'tiny-imagenet-200*')))
  candidates = [c for c in candidates
                if os.path.isfile(os.path.join(c, 'wnids.txt'))]
  full = os.path.join(data_dir, 'tiny-imagenet-200')
  if full in candidates:
    return full
  return candidates[0] if candidates else None


def tiny_imagenet_class_names(root: str):
  """(sorted wnids, readable names: the first synonym in words.txt)."""
  with open(os.path.join(root, 'wnids.txt')) as f:
    wnids = sorted(line.strip() for line in f if line.strip())
  words = {}
  words_path = os.path.join(root, 'words.txt')
  if os.path.isfile(words_path):
    with open(words_path) as f:
      for line in f:
        wnid, _, text = line.rstrip('\n').partition('\t')
        words[wnid] = text.split(',')[0].strip()
  return wnids, [words.get(w, w) for w in wnids]


def load_tiny_imagenet(root: str, split: str,
                       image_size: Optional[int]) -> ImageSource:
  """Tiny-ImageNet-200 in its official layout (train folders, val annotations).

  Class order is the sorted wnids, as an image-folder loader would give. Object
  boxes are kept in ``boxes`` (original 64×64 pixel coordinates).
  """
  wnids, _ = tiny_imagenet_class_names(root)
  index = {w: i for i, w in enumerate(wnids)}
  files, labels, boxes = [], [], []
  if split == 'train':
    for wnid in wnids:
      box_of = {}
      box_file = os.path.join(root, 'train', wnid, f'{wnid}_boxes.txt')
      if os.path.isfile(box_file):
        with open(box_file) as f:
          for line in f:
            parts = line.split()
            if len(parts) == 5:
              box_of[parts[0]] = [int(v) for v in parts[1:]]
      image_dir = os.path.join(root, 'train', wnid, 'images')
      names = sorted(os.listdir(image_dir)) if os.path.isdir(image_dir) else []
      names = [n for n in names if n.lower().endswith(IMAGE_EXTENSIONS)]
      if not names:
        raise UserError(f'Tiny-ImageNet class folder {image_dir} holds no '
                        'images; restore it or drop the wnid from wnids.txt.')
      for n in names:
        files.append(os.path.join('train', wnid, 'images', n))
        labels.append(index[wnid])
        boxes.append(box_of.get(n, [0, 0, 63, 63]))
  elif split == 'val':
    ann = os.path.join(root, 'val', 'val_annotations.txt')
    if not os.path.isfile(ann):
      raise UserError(f'{ann} is missing; Tiny-ImageNet val needs its '
                      'annotations file (official layout).')
    with open(ann) as f:
      for line in f:
        parts = line.split()
        if len(parts) >= 2 and parts[1] in index:
          files.append(os.path.join('val', 'images', parts[0]))
          labels.append(index[parts[1]])
          boxes.append([int(v) for v in parts[2:6]] if len(parts) >= 6
                       else [0, 0, 63, 63])
  else:
    raise UserError(f"Tiny-ImageNet split {split!r} has no labels here; use "
                    "'train' or 'val'.")
  _, readable = tiny_imagenet_class_names(root)
  src = _folder_source(root, files, labels, readable, 'tiny_imagenet', split,
                       image_size, boxes=np.asarray(boxes, np.int64))
  src.class_ids = wnids
  return src


def load_tfds(name: str, split: str, data_dir: str,
              image_size: Optional[int],
              prepare_arg: Optional[str] = None) -> ImageSource:
  """A TFDS dataset through ``tfds.data_source`` (prepared ArrayRecord data).

  ``prepare_arg`` is the prepare-data argument the errors name (None:
  ``tfds:<name>``).
  """
  prepare_arg = prepare_arg or f'tfds:{name}'
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise UserError(f'Reading TFDS {name} needs tensorflow-datasets, which is '
                    'not installed; pip install tensorflow-datasets.') from e
  dirs = tfds_dirs(data_dir)
  source, error = None, None
  for d in dirs:
    try:
      source = tfds.data_source(name, split=split, data_dir=d, download=False)
      break
    except Exception as e:  # TFDS raises several types for "not prepared".
      error = e
  if source is None:
    # Only a copy on disk makes "prepared as TFRecord only" true: TFDS's
    # errors mention file formats whether or not anything is there.
    folder = tfrecord_copy(name, dirs)
    if folder is not None:
      raise UserError(
          f'TFDS {name} in {folder} is prepared as TFRecord only, but random '
          'access needs ArrayRecord; convert it with `tfds convert_format '
          f'--dataset_dir={folder} --out_file_format=array_record` (needs '
          'TensorFlow), or delete that folder and run '
          f'`{prepare_command(prepare_arg, data_dir)}`.') from error
    raise UserError(
        f'No prepared TFDS dataset {name!r} (split {split!r}) is in '
        f'{" or ".join(dirs)}; prepare it with '
        f'`{prepare_command(prepare_arg, data_dir)}` (needs network; '
        f'offline, run `tfds build {name} --file_format=array_record '
        f'--data_dir=DIR` elsewhere and copy DIR/{name.split(":")[0]} into '
        f'{data_dir}), or {_where_hint(data_dir)}.') from error
  try:
    class_names = list(source.dataset_info.features['label'].names)
  except Exception:  # pylint: disable=broad-except
    class_names = None
  n = len(source)
  image_key = 'image'

  def record(i):
    return source[i]

  first = record(0)
  size = image_size or int(max(np.asarray(first[image_key]).shape[:2]))
  labels = np.asarray([int(source[i]['label']) for i in range(n)], np.int64) \
      if n <= 200_000 else None
  if labels is None:
    raise UserError(f'TFDS {name} has {n} examples; ssl_pairs reads TFDS '
                    'labels into memory and supports up to 200k here.')
  if class_names is None:
    class_names = [str(i) for i in range(int(labels.max()) + 1)]
  src = ImageSource(
      name=name, split=split, labels=labels, class_names=class_names,
      image_size=size,
      loader=lambda i: to_rgb_uint8(np.asarray(record(i)[image_key]), size))
  if n * size * size * 3 <= _PRELOAD_MAX_BYTES:
    src.images = np.stack([src.loader(i) for i in range(n)])
  return src


def _prepare_missing(name: str, data_dir: str) -> None:
  """Downloads and prepares builtin ``name`` into ``data_dir`` (it is not
  there and download=True); offline this raises the prepare UserError."""
  from ssl_pairs.data import prepare as prepare_lib  # pylint: disable=g-import-not-at-top
  print(f'{name} is not in {data_dir}: downloading and preparing it '
        '(data.download=True; --config.data.download=False fails instead).',
        flush=True)
  prepare_lib.prepare(name, data_dir)


def _split_folder(root: str, split: str) -> Optional[str]:
  aliases = {'train': ('train',), 'test': ('test', 'val', 'validation'),
             'val': ('val', 'validation', 'test')}
  for alias in aliases.get(split, (split,)):
    d = os.path.join(root, alias)
    if os.path.isdir(d):
      return d
  return None


def has_split(name: str, split: str, data_dir: str) -> bool:
  """Whether ``load_split(name, split)`` would find a real split (not a 50/50)."""
  if name in NPZ_NAMES:
    return split in ('train', 'test')
  if name == 'tiny_imagenet':
    return split in ('train', 'val', 'test')  # 'test' reads the labelled val.
  if name.startswith('tfds:'):
    return split in ('train', 'test')
  path = os.path.expanduser(name)
  if os.path.isdir(path):
    return _split_folder(path, split) is not None
  return False


def _load_builtin_npz(name: str, split: str, data_dir: str,
                      image_size: Optional[int], download: bool
                      ) -> ImageSource:
  """cifar10, cifar100 or stl10: its npz files, else a TFDS copy prepared
  as ArrayRecord, else (download) the npz files prepared from the official
  archive."""
  files = builtin_npz(name, data_dir, split)
  if files:
    return load_npz(files, name, split, image_size)
  try:
    return load_tfds(name, split, data_dir, image_size, prepare_arg=name)
  except UserError as e:
    if not download:
      if tfrecord_copy(name, tfds_dirs(data_dir)) is not None:
        raise  # Its message says how to convert it.
      raise UserError(
          f'No {_TITLES[name]} data found: neither {npz_pattern(name, split)} '
          f'nor a TFDS {name} prepared as ArrayRecord (`tfds build {name} '
          '--file_format=array_record`, which needs TensorFlow); prepare it '
          f'with `{prepare_command(name, data_dir)}` (no TensorFlow needed), '
          f'or {_where_hint(data_dir)}.') from e
  # The npz files are read first, so a TFRecord-only TFDS copy is no
  # obstacle to preparing them.
  _prepare_missing(name, data_dir)
  files = builtin_npz(name, data_dir, split)
  if files:
    return load_npz(files, name, split, image_size)
  return load_tfds(name, split, data_dir, image_size, prepare_arg=name)


@functools.lru_cache(maxsize=16)
def load_split(name: str, split: str, data_dir: str,
               image_size: Optional[int], download: bool = False
               ) -> ImageSource:
  """Loads one split of a dataset by name or path (see module docstring).

  Args:
    name: builtin name, ``tfds:<name>``, or a path to an npz file or folder.
    split: 'train', 'test' or 'val' ('test' and 'val' are aliases where a
      dataset has only one of them).
    data_dir: directory holding the builtin datasets.
    image_size: square output resolution, or None to keep the stored size.
    download: a builtin dataset (cifar10, cifar100, stl10, tiny_imagenet)
      that is not in ``data_dir`` is downloaded and prepared there first
      (:mod:`ssl_pairs.data.prepare`); data that is there is read as is.
      False (the default, for tools and tests): its absence is an error that
      names the prepare command.

  Returns:
    An ImageSource, cached per arguments: treat it as read-only.
  """
  if name in NPZ_NAMES:
    return _load_builtin_npz(name, split, data_dir, image_size, download)
  if name == 'tiny_imagenet':
    root = find_tiny_imagenet(data_dir)
    if root is None and download:
      _prepare_missing('tiny_imagenet', data_dir)
      root = find_tiny_imagenet(data_dir)
    if root is None:
      raise UserError('No Tiny-ImageNet folder (tiny-imagenet-200*/wnids.txt) '
                      'found; prepare it with '
                      f'`{prepare_command("tiny_imagenet", data_dir)}`, or '
                      f'{_where_hint(data_dir)}.')
    return load_tiny_imagenet(root, 'val' if split == 'test' else split,
                              image_size)
  if name.startswith('tfds:'):
    # Never downloaded by itself: a tfds:<name> may be any size.
    return load_tfds(name.removeprefix('tfds:'), split, data_dir, image_size,
                     prepare_arg=name)
  path = os.path.expanduser(name)
  if not os.path.isabs(path) and not os.path.exists(path):
    if os.path.exists(os.path.join(data_dir, path)):
      path = os.path.join(data_dir, path)
  label = os.path.basename(os.path.normpath(path))
  if path.endswith('.npz'):
    if not os.path.isfile(path):
      raise UserError(f'npz file {path} does not exist; check the path.')
    return load_npz([path], label, split, image_size)
  if os.path.isdir(path):
    split_dir = _split_folder(path, split)
    if split_dir is not None:
      return load_image_folder(split_dir, label, split, image_size)
    return load_image_folder(path, label, split, image_size)
  raise UserError(
      f'Unknown dataset {name!r}: use one of {", ".join(BUILTIN_NAMES)}, '
      'tfds:<name>, or a path to an .npz file or an image folder.')
