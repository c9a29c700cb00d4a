"""The final report explains itself: the untrained encoder's numbers and the
gain beside the trained ones; a finished workdir says so at once; ``:smoke``
evaluates on the run's own dataset."""

import json
import os

import numpy as np
import pytest

from conftest import synthetic_images
from ssl_pairs import train
from ssl_pairs.errors import UserError
from ssl_pairs.evals import run as eval_run
from ssl_pairs.metrics import read_jsonl

DS = 'synthetic.npz'


@pytest.fixture
def noisy_config(smoke_config, tmp_path):
  """smoke_config on a noisier copy of the synthetic images, so accuracies
  are not all 100 % and trained and untrained numbers can differ."""
  images, labels = synthetic_images()
  noise = np.random.default_rng(0).normal(0, 90, images.shape)
  images = np.clip(images + noise, 0, 255).astype(np.uint8)
  path = tmp_path / DS
  np.savez(path, images=images, labels=labels)
  smoke_config.data.dataset = smoke_config.eval.datasets = str(path)
  smoke_config.total_steps = 40  # After 4 steps the numbers are still equal.
  smoke_config.checkpoint_every_steps = 40
  return smoke_config
METRICS = ('knn@20', 'knn@200', 'probe')


def test_report_shows_untrained_encoder_and_gain(noisy_config, tmp_path,
                                                 monkeypatch):
  smoke_config = noisy_config
  monkeypatch.setenv(train.CACHE_DIR_ENV, str(tmp_path / 'cache'))
  workdir = str(tmp_path / 'run')
  report = train.run(smoke_config, workdir)
  floor = report['untrained'][DS]
  # The same numbers as the untrained-encoder evaluation done on its own
  # (evaluate_init: a run stopped before its first step).
  init = train.evaluate_init(smoke_config, str(tmp_path / 'init'))
  for k in METRICS:
    assert floor[k] == pytest.approx(init['results'][DS][k], abs=1e-6), k
  trained = report['results'][DS]
  assert any(trained[k] != floor[k] for k in METRICS)
  # eval.md and the terminal table: an untrained row and a gain row.
  table = eval_run.markdown_table(report['results'],
                                  untrained=report['untrained'])
  rows = {line.split(' | ')[0].lstrip('| '): line.split(' | ')
          for line in table.splitlines()[2:]}
  assert set(rows) == {DS, f'{DS}: untrained encoder', f'{DS}: gain'}
  header = table.splitlines()[0].split(' | ')
  for k in METRICS:
    col = header.index(f'{k} top-1 %')
    assert rows[f'{DS}: untrained encoder'][col] == f'{floor[k]:.2f}'
    assert rows[f'{DS}: gain'][col] == f'{trained[k] - floor[k]:+.2f}'
  with open(os.path.join(workdir, 'eval.md')) as f:
    md = f.read()
  assert f'| {DS}: untrained encoder |' in md and f'| {DS}: gain |' in md

  # Cached: a new workdir of the same network, seed and evaluation reads the
  # cache instead of evaluating (a planted value comes back).
  path = train.untrained_cache_path(smoke_config)
  with open(path) as f:
    cached = json.load(f)
  cached['results'][DS]['knn@20'] = 12.34
  with open(path, 'w') as f:
    json.dump(cached, f)
  again = train.run(smoke_config, str(tmp_path / 'run2'))
  assert again['untrained'][DS]['knn@20'] == 12.34
  # Another seed is another untrained encoder: another cache entry.
  other = smoke_config.copy_and_resolve_references()
  other.seed = 1
  assert train.untrained_cache_path(other) != path

  # A finished workdir rerun with the same config says so and returns its
  # report without loading data or restoring anything.
  def no_data(*_):
    raise AssertionError('a finished run loaded its data again')
  monkeypatch.setattr(train, '_data', no_data)
  done = train.run(smoke_config, workdir)
  assert done['results'][DS]['step'] == report['results'][DS]['step']


def test_untrained_is_the_learning_curves_epoch_zero(smoke_config, tmp_path,
                                                     monkeypatch):
  """With a learning curve, the epoch-0 point is the untrained encoder: no
  extra evaluation, nothing cached."""
  cache = tmp_path / 'cache'
  monkeypatch.setenv(train.CACHE_DIR_ENV, str(cache))
  smoke_config.eval.every_epochs = 1.0
  smoke_config.eval.probe = False
  workdir = str(tmp_path / 'run')
  report = train.run(smoke_config, workdir)
  (zero,) = [r for r in read_jsonl(os.path.join(workdir, 'eval_curve.jsonl'))
             if r['step'] == 0]
  for k in ('knn@20', 'knn@200'):
    assert report['untrained'][DS][k] == zero['results'][DS][k]
  assert not cache.exists()
  off = smoke_config.copy_and_resolve_references()
  off.eval.untrained = False
  off.eval.every_epochs = 0.0
  report = train.run(off, str(tmp_path / 'off'))
  assert 'untrained' not in report and not cache.exists()


def test_untrained_rows_only_for_the_same_protocol():
  results = {'a': {'knn@20': 50.0, 'protocol': {'seed': 0}},
             'b': {'knn@20': 40.0, 'protocol': {'seed': 0}}}
  untrained = {'a': {'knn@20': 30.0, 'protocol': {'seed': 0}},
               'b': {'knn@20': 35.0, 'protocol': {'seed': 1}}}
  table = eval_run.markdown_table(results, untrained=untrained)
  assert '| a: gain | +20.00 |' in table
  assert 'b: gain' not in table and 'b: untrained' not in table


def test_pretraining_names_the_runs_own_dataset():
  assert eval_run.parse_datasets('pretraining,cifar100?', 'mine.npz') == [
      ('mine.npz', False), ('cifar100', True)]
  with pytest.raises(UserError, match="names 'pretraining'"):
    eval_run.parse_datasets('pretraining')
  from configs import simclr_sp  # pylint: disable=g-import-not-at-top
  assert simclr_sp.get_config('smoke').eval.datasets == 'pretraining'
