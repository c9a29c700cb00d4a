r"""python launch/device/data.py [--out=.devdata] [--train=20000]

Writes the GPU kit's data: a CIFAR-10 training subset (``--train`` images,
every class in proportion, seeded) and the whole 10k test set, as one zip
``<out>/cifar10.zip`` of an image folder ``cifar10/{train,test}/<class>/
<n>.jpg`` (one file travels faster than 30k); ``check.sh`` unpacks it and
``ssl_pairs.data.sources`` reads it like any folder dataset. JPEG quality 90
keeps it small enough to travel with the wheels (64 MiB in all; the train
images are already JPEG quality 75 in ../shared/data, so little more is
lost; the test images change by under 1 grey level on average). Prints the
size.
"""

import argparse
import os
import shutil
import sys
import tempfile
import zipfile

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[1])
  parser.add_argument('--data_dir', default=os.environ.get(
      'SSL_PAIRS_DATA_DIR', os.path.join(REPO, '..', 'shared', 'data')))
  parser.add_argument('--out', default=os.path.join(REPO, '.devdata'))
  parser.add_argument('--train', type=int, default=20000)
  parser.add_argument('--test', type=int, default=10000)
  parser.add_argument('--quality', type=int, default=90)
  args = parser.parse_args()
  shards = [np.load(os.path.join(args.data_dir, f'cifar10_train_{i:02d}.npz'))
            for i in range(5)]
  train_x = np.concatenate([z['images'] for z in shards])
  train_y = np.concatenate([z['labels'] for z in shards])
  names = [str(n) for n in shards[0]['label_names']]
  test = np.load(os.path.join(args.data_dir, 'cifar10_test.npz'))
  rng = np.random.default_rng(0)
  keep = np.sort(np.concatenate([
      rng.choice(np.nonzero(train_y == c)[0], args.train // 10, replace=False)
      for c in range(10)]))
  test_keep = np.arange(min(args.test, len(test['labels'])))
  staging = tempfile.mkdtemp()
  root = os.path.join(staging, 'cifar10')
  total = 0
  for split, x, y in (('train', train_x[keep], train_y[keep]),
                      ('test', test['images'][test_keep],
                       test['labels'][test_keep])):
    for c in range(10):
      os.makedirs(os.path.join(root, split, names[c]), exist_ok=True)
    for i, (image, label) in enumerate(zip(x, y)):
      path = os.path.join(root, split, names[label], f'{i:05d}.jpg')
      Image.fromarray(image).save(path, quality=args.quality)
      total += os.path.getsize(path)
  os.makedirs(args.out, exist_ok=True)
  archive = os.path.join(args.out, 'cifar10.zip')
  with zipfile.ZipFile(archive + '.tmp', 'w', zipfile.ZIP_STORED) as z:
    for folder, _, files in sorted(os.walk(root)):
      for f in sorted(files):
        path = os.path.join(folder, f)
        z.write(path, os.path.relpath(path, staging))
  os.replace(archive + '.tmp', archive)
  shutil.rmtree(staging)
  print(f'{archive}: {len(keep)} train + {len(test_keep)} test CIFAR-10 '
        f'images, {total / 2**20:.1f} MiB of JPEG, '
        f'{os.path.getsize(archive) / 2**20:.1f} MiB zipped.')
  return 0


if __name__ == '__main__':
  sys.exit(main())
