r"""python launch/reliability_report.py --out=docs/bad_inputs.md

Feeds ssl_pairs every kind of bad input we guard against and records what the
user sees: the one-sentence error (or, for inputs we repair, what happens).
Everything runs on tiny synthetic data in a temporary directory; the table is
written to ``--out`` (markdown) and printed.
"""

import importlib.util
import os
import subprocess
import sys
import tempfile

from absl import flags
from absl import logging

import numpy as np
from PIL import Image

from ssl_pairs import train
from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data import sources
from ssl_pairs.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _test_helpers():
  """tests/conftest.py's config and image helpers (this report feeds the same
  inputs as the tests), loaded from its file: tests/ is not a package."""
  spec = importlib.util.spec_from_file_location(
      'ssl_pairs_test_helpers', os.path.join(REPO, 'tests', 'conftest.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


_helpers = _test_helpers()
load_config, synthetic_images = _helpers.load_config, _helpers.synthetic_images

_OUT = flags.DEFINE_string('out', 'docs/bad_inputs.md', 'Markdown output.')


def _message(fn):
  try:
    fn()
  except UserError as e:
    return f'error: {e}'
  return 'accepted'


def _cli(tmp, npz, *extra, env=None):
  cmd = [sys.executable, os.path.join(REPO, 'main.py'),
         '--config=configs/simclr_sp.py:smoke', f'--workdir={tmp}/cli',
         f'--config.data.dataset={npz}', '--config.data.classes=all',
         '--config.data.pairs_per_class=0', f'--config.eval.datasets={npz}',
         *extra]
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                        env=dict(os.environ, **(env or {})), timeout=300)
  lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
  return f'exit {proc.returncode}: {lines[-1] if lines else ""}'


def cases(tmp):
  """(input, callable returning what the user sees) pairs."""
  images, labels = synthetic_images()
  npz = os.path.join(tmp, 'good.npz')
  np.savez(npz, images=images, labels=labels)

  def smoke(**changes):
    c = load_config('simclr_sp')
    c.data.dataset, c.eval.datasets = npz, npz
    c.data.classes, c.data.pairs_per_class = 'all', 0
    for key, value in changes.items():
      target = c
      *parents, name = key.split('.')
      for p in parents:
        target = target[p]
      target[name] = value
    return lambda: train.run(c, os.path.join(tmp, 'run', key_of(changes)))

  def key_of(changes):
    return '_'.join(f'{k}{v}' for k, v in changes.items()).replace('/', '_')

  truncated = os.path.join(tmp, 'truncated.npz')
  with open(npz, 'rb') as f:
    data = f.read()
  with open(truncated, 'wb') as f:
    f.write(data[:len(data) // 2])
  floats = os.path.join(tmp, 'floats.npz')
  np.savez(floats, images=images.astype(np.float32) / 255, labels=labels)
  chw = os.path.join(tmp, 'chw.npz')
  np.savez(chw, images=np.zeros((4, 3, 5, 5), np.uint8), labels=np.zeros(4))

  folder = os.path.join(tmp, 'folder')
  for cls, mode, colour in (('gray', 'L', 90), ('palette', 'P', 7),
                            ('rgba', 'RGBA', (9, 9, 9, 0))):
    os.makedirs(os.path.join(folder, cls))
    for i in range(3):
      Image.new(mode, (20, 14), colour).save(
          os.path.join(folder, cls, f'{i}.png'))
  empty = os.path.join(tmp, 'empty')
  os.makedirs(os.path.join(empty, 'a'))
  os.makedirs(os.path.join(empty, 'b'))
  Image.new('RGB', (8, 8)).save(os.path.join(empty, 'a', 'x.png'))
  one = os.path.join(tmp, 'one_image.npz')
  np.savez(one, images=images[:11], labels=labels[:11])  # Class 1: 1 image.

  short_prior = os.path.join(tmp, 'short_prior.npy')
  np.save(short_prior, np.zeros((5, 4), np.float32))
  src = sources.load_split(npz, 'train', '', None)
  pair_files = {}
  for name, text in (('missing', '0,1\n0,999\n'), ('duplicate', '0,1\n0,1\n'),
                     ('unknown_class', '0,1,zebra\n'),
                     ('wrong_class', '0,1,7\n'),
                     ('cross_class', '0,1\n2,15\n')):
    pair_files[name] = os.path.join(tmp, f'{name}.csv')
    with open(pair_files[name], 'w') as f:
      f.write(text)

  def resumed_with(**changes):
    def go():
      c = load_config('simclr_sp')
      c.data.dataset, c.eval.datasets = npz, npz
      c.data.classes, c.data.pairs_per_class = 'all', 0
      c.eval.probe = False
      workdir = os.path.join(tmp, 'resume')
      train.run(c, workdir)
      for key, value in changes.items():
        section, name = key.split('.')
        c[section][name] = value
      train.run(c, workdir)
    return go

  a_file = os.path.join(tmp, 'a_file')
  with open(a_file, 'w') as f:
    f.write('not a folder')

  def one_class_eval():
    c = load_config('simclr_sp')
    c.data.dataset, c.data.classes, c.data.pairs_per_class = npz, 'all', 0
    c.eval.datasets, c.eval.probe = one_class, False
    report = train.run(c, os.path.join(tmp, 'one_class_eval'))
    return f'accepted, flagged: note "{report["results"]["one_class.npz"]["note"]}"'

  one_class = os.path.join(tmp, 'one_class.npz')
  np.savez(one_class, images=images[:10], labels=labels[:10])

  def locked_workdir():
    held = os.path.join(tmp, 'held')
    os.makedirs(held, exist_ok=True)
    child = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time\n'
         'from ssl_pairs import workdir as w\n'
         'with w.exclusive(sys.argv[1], "training"):\n'
         '  print("held", flush=True); time.sleep(120)', held],
        stdout=subprocess.PIPE, text=True)
    child.stdout.readline()
    try:
      c = load_config('simclr_sp')
      c.data.dataset, c.eval.datasets = npz, npz
      c.data.classes, c.data.pairs_per_class = 'all', 0
      return _message(lambda: train.run(c, held))
    finally:
      child.kill()
      child.wait()

  return [
      ('truncated / corrupt npz', lambda: _message(
          lambda: sources.load_split(truncated, 'train', '', None))),
      ('float images in an npz', lambda: _message(
          lambda: sources.load_split(floats, 'train', '', None))),
      ('channels-first images [N, 3, H, W]', lambda: _message(
          lambda: sources.load_split(chw, 'train', '', None))),
      ('grayscale, palette and RGBA image files', lambda: _message(
          lambda: sources.load_split(folder, 'train', '', 16)) +
       ' (converted to RGB, resized)'),
      ('an empty class folder', lambda: _message(
          lambda: sources.load_split(empty, 'train', '', None))),
      ('a class with one image under semantic pairs', lambda: _message(
          smoke(**{'data.dataset': one}))),
      ('pair file naming missing images', lambda: _message(
          lambda: pairs_lib.read_pair_file(pair_files['missing'], src))),
      ('pair file with a duplicate row', lambda: _message(
          lambda: pairs_lib.read_pair_file(pair_files['duplicate'], src))),
      ('pair file with an unknown class', lambda: _message(
          lambda: pairs_lib.read_pair_file(pair_files['unknown_class'], src))),
      ('pair file whose class contradicts the image', lambda: _message(
          lambda: pairs_lib.read_pair_file(pair_files['wrong_class'], src))),
      ('pair file pairing images of two classes', lambda: _message(
          lambda: pairs_lib.read_pair_file(pair_files['cross_class'], src))),
      ('config switch typo (:runlocl)', lambda: _cli(
          tmp, npz, '--config=configs/simclr_sp.py:runlocl')),
      ('--workdir naming an existing file', lambda: _message(
          lambda: train.run(load_config('simclr_sp'), a_file))),
      ('a workdir another run is training in', locked_workdir),
      ('evaluation on a dataset with one class', one_class_eval),
      ('misspelt config key (--config.data.datset=x)', lambda: _cli(
          tmp, npz, '--config.data.datset=x')),
      ('config override of the wrong type (--config.batch_size=abc)',
       lambda: _cli(tmp, npz, '--config.batch_size=abc')),
      ('config file that does not exist', lambda: _cli(
          tmp, npz, '--config=configs/no_such_config.py')),
      ('unknown method', lambda: _message(smoke(**{'method.name': 'simsiam'}))),
      ('unknown backbone', lambda: _message(smoke(**{'model.arch': 'vgg'}))),
      ('unknown pair source', lambda: _message(smoke(**{'data.pairs': 'nn'}))),
      ('unknown dataset', lambda: _message(
          smoke(**{'data.dataset': 'imagenet22k'}))),
      ('no data where it looked (downloads off)', lambda: _message(
          smoke(**{'data.dataset': 'tiny_imagenet', 'data.download': False,
                   'data.data_dir': os.path.join(tmp, 'nowhere')}))),
      ('batch_size=0', lambda: _message(smoke(batch_size=0))),
      ('negative pairs_per_class', lambda: _message(
          smoke(**{'data.pairs_per_class': -2}))),
      ('temperature 0', lambda: _message(smoke(**{'method.temperature': 0.0}))),
      ('probability 1.5', lambda: _message(
          smoke(**{'data.augment.gray_prob': 1.5}))),
      ('zero learning rate', lambda: _message(smoke(**{'optim.base_lr': 0.0}))),
      ('batch larger than the data', lambda: _message(smoke(batch_size=512))),
      ('batch not divisible by the device count (4 devices, batch 10)',
       lambda: _cli(tmp, npz, '--config.batch_size=10', env={
           'XLA_FLAGS': '--xla_force_host_platform_device_count=4'})),
      ('workdir holding a checkpoint of another config', lambda: _message(
          resumed_with(**{'method.temperature': 0.5}))),
      ('unknown GPS prior', lambda: _message(smoke(**{
          'data.pairs': 'gps', 'data.gps.prior': 'imagenet_weights'}))),
      ('GPS prior npy file with the wrong number of rows', lambda: _message(
          smoke(**{'data.pairs': 'gps',
                   'data.gps.prior': f'npy:{short_prior}'}))),
      ('SPPS with a non-contrastive method (BYOL)', lambda: _message(smoke(**{
          'data.pairs': 'spps', 'method.name': 'byol'}))),
      ('temporal pairs with min_gap > max_gap', lambda: _message(smoke(**{
          'data.pairs': 'temporal', 'data.temporal.min_gap': 5}))),
      ('temporal shot_starts that are not frame numbers', lambda: _message(
          smoke(**{'data.pairs': 'temporal',
                   'data.temporal.shot_starts': '0,ten'}))),
      ('data.load_size=-2', lambda: _message(smoke(**{'data.load_size': -2}))),
      ('data.augment_on=gpu (a typo of device)', lambda: _message(
          smoke(**{'data.augment_on': 'gpu'}))),
      ('data.object_crops on a dataset without boxes', lambda: _message(
          smoke(**{'data.object_crops': True}))),
  ]


def main(argv):
  del argv
  logging.set_verbosity(logging.ERROR)
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for name, fn in cases(tmp):
      seen = fn().replace('|', '\\|').replace('\n', ' ')
      rows.append(f'| {name} | {seen} |')
      print(rows[-1], flush=True)
  text = '\n'.join([
      '# Bad inputs and what the user sees', '',
      'Generated by `python launch/reliability_report.py` (every row was '
      'produced by running the input). Paths of the temporary directory are '
      'shown as they were.', '',
      '| input | what happens |', '|---|---|', *rows, ''])
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  with open(_OUT.value, 'w') as f:
    f.write(text)


if __name__ == '__main__':
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main, clear=False)
