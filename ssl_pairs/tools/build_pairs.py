r"""Builds the matched semantic-pairs (PS) and augmented-pairs (PA) sets.

  python -m ssl_pairs.tools.build_pairs --dataset=tiny_imagenet \
      --classes=tiny_imagenet_cifar10_overlap --pairs_per_class=50 \
      --match=pairs --out_dir=pairs/tiny_c10

Mirrors the paper's construction (arXiv 2510.08722: 187 classes × 157 pairs):
C classes (all, a count, or a class-list file; the shipped list
``tiny_imagenet_cifar10_overlap`` holds the Tiny-ImageNet classes under CIFAR-10
categories) × P pairs per class.

* ``--match=pairs``: PS uses 2P distinct images per class where the class has
  them (each image in at most one pair); PA uses P images (the PS anchors), so
  both sets have C·P pairs.
* ``--match=images``: both use the same P images per class; PS pairs them up
  among themselves (each image an anchor once and a partner once).

Writes ``semantic_pairs.csv`` and ``augmented_pairs.csv`` (``anchor,partner,
class`` with paths relative to the dataset root, as ``data.pairs=pair_file``
reads them) and ``summary.json``, and prints a summary. Pairs are drawn from
labels with a seed, not curated by hand.
"""

from absl import app
from absl import flags

from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data import sources as sources_lib

_DATASET = flags.DEFINE_string('dataset', 'tiny_imagenet',
                               'Labelled dataset name or path.')
_SPLIT = flags.DEFINE_string('split', 'train', 'Split to draw images from.')
_DATA_DIR = flags.DEFINE_string('data_dir', '', "'' = $SSL_PAIRS_DATA_DIR.")
_CLASSES = flags.DEFINE_string(
    'classes', 'all', "'all', a count, a class-list file, or the name of a "
    'list in ssl_pairs/resources.')
_PAIRS_PER_CLASS = flags.DEFINE_integer('pairs_per_class', 50, 'P.')
_MATCH = flags.DEFINE_enum('match', 'pairs', ['pairs', 'images'],
                           'How PS and PA are matched (see module doc).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the class/image selection.')
_OUT_DIR = flags.DEFINE_string('out_dir', None, 'Where to write the files.')


def main(argv):
  del argv
  source = sources_lib.load_split(
      _DATASET.value, _SPLIT.value,
      sources_lib.resolve_data_dir(_DATA_DIR.value), None)
  s = pairs_lib.build_matched_sets(source, _CLASSES.value,
                                   _PAIRS_PER_CLASS.value, _MATCH.value,
                                   _SEED.value, _OUT_DIR.value)
  print(f'{s["dataset"]} {s["split"]}: {len(s["classes"])} classes × '
        f'{s["pairs_per_class"]} pairs, match={s["match"]}, seed={s["seed"]}')
  print('| set | pairs | distinct images | classes | same-image pairs |')
  print('|---|---|---|---|---|')
  for name in ('semantic', 'augmented'):
    r = s[name]
    print(f'| {name} | {r["pairs"]} | {r["distinct_images"]} | '
          f'{r["classes"]} | {r["same_image_pairs"]} |')
  for name, path in s['files'].items():
    print(f'{name}: {path}')


if __name__ == '__main__':
  flags.mark_flags_as_required(['out_dir'])
  app.run(main)
