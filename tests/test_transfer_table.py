"""launch/transfer_table.py: records and a table equal to the evaluator's."""

import csv
import json
import os
import shutil
import types

import jax
import ml_collections
import pytest

from conftest import few_class_tiny_imagenet, REPO
from ssl_pairs import checkpoint
from ssl_pairs import sharding
from ssl_pairs import train
from ssl_pairs.errors import UserError
from ssl_pairs.evals import run as eval_run


def _module():
  import importlib.util  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  key = '_transfer_table_module'
  if key not in sys.modules:  # No absl flags: build() takes its own args.
    spec = importlib.util.spec_from_file_location(
        key, os.path.join(REPO, 'launch', 'transfer_table.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[key] = module
  return sys.modules[key]


def _args(tmp_path, data_dir, npz, runs, **kw):
  a = dict(runs=runs, out=str(tmp_path / 'out'), records='',
           scratch=str(tmp_path / 'scratch'), collect_only=False, force=False,
           allow_unfinished=False, data_dir=data_dir,
           datasets=f'{npz},tiny_imagenet', box_datasets='tiny_imagenet',
           knn_k='5,20', train_limit=0, test_limit=0, probe_max_iter=30,
           batch_size=64, command='python launch/transfer_table.py (test)')
  a.update(kw)
  return types.SimpleNamespace(**a)


def test_records_and_table_equal_the_evaluator(smoke_config, synthetic_npz,
                                               real_data_dir, tmp_path):
  tt = _module()
  data_dir = few_class_tiny_imagenet(real_data_dir, tmp_path / 'data', 4)
  workdir = str(tmp_path / 'runs' / 'ps')
  # The run's own evaluation (and its untrained one) with the protocol of
  # the program's: the records are checked against them.
  smoke_config.eval.update(knn_k='5,20', probe_max_iter=30)
  train.run(smoke_config, workdir)
  before = sorted(os.listdir(workdir))
  args = _args(tmp_path, data_dir, synthetic_npz, [f'PS_s0={workdir}'])
  text = tt.build(args)
  assert sorted(os.listdir(workdir)) == before  # Nothing written there.

  record_dir = tmp_path / 'out' / 'runs'
  rec = json.loads((record_dir / 'PS_s0.json').read_text())
  floor = json.loads((record_dir / 'untrained_s0.json').read_text())
  with open(os.path.join(workdir, 'config.json')) as f:
    assert rec['config'] == json.load(f)
  assert (rec['step'], rec['seed'], floor['floor_of']) == (4, 0, ['PS_s0'])
  assert rec['command'] == args.command and rec['commit']
  assert rec['training_check']['max_abs_diff'] == {'synthetic.npz': 0.0}
  assert floor['training_check']['max_abs_diff'] == {'synthetic.npz': 0.0}

  # The evaluator on the same checkpoint, data and settings gives the same
  # numbers as the record, and the table shows them.
  saved, step, variables, _ = checkpoint.restore_encoder(workdir)
  ev = eval_run.Evaluator(
      tt.eval_config(saved['eval']), data_dir, saved['data']['image_size'],
      ml_collections.ConfigDict(saved['model']), sharding.make_mesh(),
      seed=saved['seed'], pretraining_dataset=saved['data']['dataset'])
  direct = ev(jax.device_put(variables))
  assert step == 4
  keys = {'synthetic.npz', 'tiny_imagenet', 'tiny_imagenet_boxes',
          'tiny_imagenet_crops'}
  assert set(rec['results']) == keys == set(floor['results'])
  cols = tt.columns(rec['eval_settings'])
  with open(tmp_path / 'out' / 'results.csv') as f:
    rows = {r['encoder']: r for r in csv.DictReader(f)}
  assert list(rows) == ['untrained_s0', 'PS_s0']
  for _, d, m in cols:
    if m == 'online_probe':
      assert rows['PS_s0'][f'{d}/{m}'] == '' and m not in rec['results'][d]
      continue
    assert rec['results'][d][m] == pytest.approx(direct[d][m], abs=1e-6), (d, m)
    assert float(rows['PS_s0'][f'{d}/{m}']) == rec['results'][d][m]
    assert float(rows['untrained_s0'][f'{d}/{m}']) == floor['results'][d][m]
  line = next(l for l in text.splitlines() if l.startswith('| PS_s0 |'))
  assert f'| {direct["tiny_imagenet_boxes"]["box_miou"]:.2f} |' in line
  assert line.rstrip().endswith('| — |')  # No online probe: trained without.
  assert '| untrained floor (seed 0) |' in text
  assert 'eval.online_probe=True' in text and 'bit-identical' in text
  assert 'Cross-check' in text and 'untrained floor (seed 0): synthetic.npz equal' in text

  # With the workdir and the scratch evaluations gone, --collect_only renders
  # the same table from the records alone; a rerun reuses the records.
  shutil.rmtree(tmp_path / 'runs')
  shutil.rmtree(tmp_path / 'scratch')
  md = (tmp_path / 'out' / 'results.md').read_text()
  csv_text = (tmp_path / 'out' / 'results.csv').read_text()
  (tmp_path / 'out' / 'results.md').unlink()
  again = tt.build(_args(tmp_path, data_dir, synthetic_npz, [],
                         collect_only=True))
  assert again == md == (tmp_path / 'out' / 'results.md').read_text()
  assert (tmp_path / 'out' / 'results.csv').read_text() == csv_text

  # A missing or unknown workdir is one sentence.
  for runs, match in (([f'PA_s0={tmp_path / "nope"}'], 'no such folder'),
                      (['PA_s0'], 'not NAME=WORKDIR')):
    with pytest.raises(UserError, match=match):
      tt.build(_args(tmp_path, data_dir, synthetic_npz, runs))
  with pytest.raises(UserError, match='No record of PA_s0'):
    tt.build(_args(tmp_path, data_dir, synthetic_npz, ['PA_s0'],
                   collect_only=True))
