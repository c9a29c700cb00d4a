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

``--curate=<spec>`` also writes ``curated_pairs.csv``: a PS set over the same
images (``--match=images``) whose partners a prior chooses among the image's
class (``prior:pixels``, ``prior:autoencoder``, ``prior:checkpoint:<workdir>``,
``prior:npy:<path>``) or that keeps only images whose object box covers a
fraction of them (``boxes:0.3``); with ``curated_report.json`` and ``.md``
beside it (per class: mean prior distance of the chosen pairs against the
random ones, fraction of images kept). See :mod:`ssl_pairs.mining.curate`.
"""

import json
import os


from absl import flags

from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data import sources as sources_lib
from ssl_pairs.errors import UserError
from ssl_pairs.mining import curate as curate_lib

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
_CURATE = flags.DEFINE_string(
    'curate', '', 'Also write a curated PS set: prior:pixels | '
    'prior:autoencoder | prior:checkpoint:<workdir> | prior:npy:<path> | '
    'boxes:<min_fraction>.')
_PIXEL_SIZE = flags.DEFINE_integer('pixel_size', 16,
                                   'prior:pixels resolution (data.gps).')


def write_curated(source, out_dir):
  """curated_pairs.csv and its report for --curate."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from configs import common  # pylint: disable=g-import-not-at-top
  prior_config = common.data_config('gps').gps
  prior_config.pixel_size = _PIXEL_SIZE.value
  model = common.base_config(ml_collections.ConfigDict(common.method_module('simclr').METHOD), 'semantic',
                             'curate', None).model
  pair_set, report = curate_lib.curate(
      source, _CURATE.value, _CLASSES.value, _PAIRS_PER_CLASS.value,
      _SEED.value, prior_config, model, out_dir)
  path = os.path.join(out_dir, 'curated_pairs.csv')
  pairs_lib.write_pair_file(path, pair_set, source)
  with open(os.path.join(out_dir, 'curated_report.json'), 'w') as f:
    json.dump(report, f, indent=1)
  lines = [f'# Curated pairs: {_CURATE.value}', '',
           f'{report["pairs"]} pairs of {report["images_kept"]} of the '
           f'{report["images_offered"]} images offered, '
           f'{report["classes_kept"]} classes.', '']
  if 'mean_distance_curated' in report:
    lines += [f'Mean squared prior distance of a pair: curated '
              f'{report["mean_distance_curated"]:.4g}, random same-class '
              f'{report["mean_distance_random"]:.4g}.', '',
              '| class | pairs | curated distance | random distance |',
              '|---|---|---|---|']
    lines += [f'| {c} | {e["pairs"]} | {e["mean_distance_curated"]:.4g} | '
              f'{e["mean_distance_random"]:.4g} |'
              for c, e in report['classes'].items()]
  else:
    lines += ['| class | images kept | fraction kept | mean box fraction |',
              '|---|---|---|---|']
    lines += [f'| {c} | {e["pairs"]} | {e["kept_fraction"]:.2f} | '
              f'{e["mean_box_fraction_kept"]:.2f} |'
              for c, e in report['classes'].items()]
  with open(os.path.join(out_dir, 'curated_report.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  return path, report


def main(argv):
  del argv
  if _CURATE.value:
    curate_lib.parse_spec(_CURATE.value)  # A bad spec fails before any work.
    if _MATCH.value != 'images':
      raise UserError('--curate pairs the random PS set\'s images; pass '
                      '--match=images.')
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
  if _CURATE.value:
    path, report = write_curated(source, _OUT_DIR.value)
    print(f'curated ({_CURATE.value}): {path} — {report["pairs"]} pairs; '
          f'report {os.path.join(_OUT_DIR.value, "curated_report.md")}')


if __name__ == '__main__':
  flags.mark_flags_as_required(['out_dir'])
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
