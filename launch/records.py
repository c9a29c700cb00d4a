"""Committed records of finished runs, shared by the comparison launchers.

A study that takes longer than a working session cannot live in ``runs/``,
which a new session may not have. Each finished run therefore leaves a small
record, ``<out>/runs/<name>.json``, meant to be committed: its results (and
learning curve), wall time, the collapse monitor every ``CURVE_EVERY`` steps,
its config, the SHA-256 of its pair file and the commit it trained with. A
run with a record counts as done even when its workdir is gone; the tables
are built from the records; a record of another config or other pairs than
the invocation would train is refused, naming the keys.
"""

import datetime
import hashlib
import json
import os
import subprocess

from ssl_pairs import checkpoint
from ssl_pairs.errors import UserError
from ssl_pairs.metrics import read_jsonl


CURVE_KEYS = ('loss', 'embed_rank', 'embed_std', 'queue_cos_newest',
              'queue_cos_oldest')
CURVE_EVERY = 10


def file_sha256(path: str):
  """The file's SHA-256; None for no file ('': a run without a pair file,
  as augmented pairs straight from a dataset or temporal pairs)."""
  if not path:
    return None
  with open(path, 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()


def pair_file_of(config: dict) -> str:
  """The pair file a run reads ('' when its pairs come from elsewhere)."""
  data = config['data']
  return data.get('pair_file', '') if data.get('pairs') == 'pair_file' else ''


def commit() -> str:
  try:
    return subprocess.run(
        ['git', 'rev-parse', '--short', 'HEAD'], capture_output=True,
        text=True, cwd=os.path.dirname(os.path.abspath(__file__)),
        check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return 'unknown'


def record_path(record_dir: str, name: str) -> str:
  return os.path.join(record_dir, f'{name}.json')


def make_record(run_dir, name, record_dir, commit, extra=None,
                allow_no_steps=False):
  """The record of the finished run in ``run_dir`` (not yet written).

  ``commit`` is the commit the launcher started at; the record of the same
  finished run (the same eval.json time) keeps the one it has. ``extra``
  fields (a study's labels for the run) go after the name; a run with a
  learning curve (eval_curve.jsonl) keeps it too.
  """
  with open(os.path.join(run_dir, 'eval.json')) as f:
    report = json.load(f)
  with open(os.path.join(run_dir, 'config.json')) as f:
    config = json.load(f)
  steps = read_jsonl(os.path.join(run_dir, 'metrics.jsonl'))
  if not steps and not allow_no_steps:
    raise UserError(f'{run_dir} has an eval.json but no metrics.jsonl; train '
                    'that run again (delete its workdir).')
  kept = [r for r in steps if r['step'] % CURVE_EVERY == 0 or r is steps[0]
          or r is steps[-1]]
  curve = {'step': [r['step'] for r in kept]} if steps else {}
  for key in CURVE_KEYS:
    if steps and key in steps[0]:
      curve[key] = [round(float(r.get(key, float('nan'))), 6) for r in kept]
  first, last = (steps[0], steps[-1]) if steps else ({}, {})
  record = {
      'name': name,
      **(extra or {}),
      'results': report['results'],
      'train_seconds': report['train_seconds'],
      'loss': (first.get('loss'), last.get('loss')),
      'rank': (first.get('embed_rank'), last.get('embed_rank')),
      'curve': curve,
      'pair_file_sha256': file_sha256(pair_file_of(config)),
      'commit': commit,
      'finished': datetime.datetime.fromtimestamp(
          os.path.getmtime(os.path.join(run_dir, 'eval.json')),
          datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
      'config': config,
  }
  curve_path = os.path.join(run_dir, 'eval_curve.jsonl')
  if os.path.exists(curve_path):
    record['eval_curve'] = [
        {'step': p['step'], 'epoch': p['epoch'], 'results': p['results']}
        for p in read_jsonl(curve_path)]
  old = load_record(record_dir, name)
  if old is not None and old.get('finished') == record['finished']:
    record['commit'] = old.get('commit', commit)
  return record


def write_record(record, record_dir):
  os.makedirs(record_dir, exist_ok=True)
  tmp = record_path(record_dir, record['name']) + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(record, f, indent=1)
  os.replace(tmp, record_path(record_dir, record['name']))


# Config keys that do not change a finished run's results.
RECORD_IGNORED = ('name', 'data.pair_file', 'data.data_dir', 'data.download',
                  'data.num_workers', 'data.prefetch', 'progress', 'log_every_steps',
                  'checkpoint_every_steps', 'keep_checkpoints')


def check_record(record, config: dict, pair_file: str) -> None:
  """Refuses a record of a run other than the one ``config`` would train."""
  path = f'the record of {record["name"]}'
  unsafe, safe = checkpoint.config_differences(record['config'], config)
  # Settings that only a resume may change (the run's length, its
  # evaluation) change a finished run's results; settings added to ssl_pairs
  # after the record stay safe (config_differences knows their old values).
  had = checkpoint.flatten(record['config'])
  unsafe = sorted(k for k in unsafe + [k for k in safe if k in had]
                  if k not in RECORD_IGNORED)
  if unsafe:
    now = checkpoint.flatten(config)
    shown = ', '.join(f'{k} ({had.get(k)!r} → {now.get(k)!r})'
                      for k in unsafe[:5])
    raise UserError(
        f'{path} was trained with another config ({shown}); delete it, or '
        'pass another --out, to train this run again.')
  if record['pair_file_sha256'] != file_sha256(pair_file):
    which = pair_file or 'no pair file'
    if record['pair_file_sha256'] is None:
      which = f'{pair_file} (it had no pair file)'
    raise UserError(
        f'{path} was trained on other pairs than {which}; delete it, or '
        'pass another --out, to train this run again.')


def load_record(record_dir, name):
  """The record of run ``name``, or None."""
  path = record_path(record_dir, name)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)
