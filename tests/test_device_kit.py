"""The GPU verification kit runs end to end on the CPU (check.sh --tiny)."""

import json
import os
import subprocess
import sys

from conftest import REPO


def test_check_tiny_runs_every_stage_and_reports(tmp_path):
  out = tmp_path / 'out'
  env = dict(os.environ, PYTHON=sys.executable, JAX_PLATFORMS='cpu')
  env.pop('OUT', None)
  proc = subprocess.run(['bash', 'launch/device/check.sh', '--tiny',
                         f'--out={out}'], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=1500)
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = json.loads((out / 'device_report.json').read_text())
  stages = {r['stage']: r for r in report['stages']}
  assert list(stages) == ['environment', 'unit_tests', 'benchmark', 'torch',
                          'train', 'paper_shapes', 'profile']
  failed = {n: r.get('error') for n, r in stages.items() if not r.get('ok')}
  assert not failed, failed
  result = {n: r['result'] for n, r in stages.items()}
  assert result['environment']['platform'] == 'cpu'
  assert result['unit_tests']['passed']
  row = result['benchmark']['rows'][0]
  assert row['step_pairs_s'] > 0 and row['e2e_pairs_s'] > 0
  assert row['gflop_step'] > 0 and row['compile_s'] > 0
  assert 'skipped' in result['torch']  # No GPU: noted, not failed.
  train = result['train']
  assert train['steps'] == 4 and set(train['trained']) == {'knn@20', 'knn@200'}
  shapes = result['paper_shapes']['rows']
  assert len(shapes) == 2 and all('step_ms' in r and 'error' not in r
                                  for r in shapes)
  assert result['profile']['top_ops_ms']
  md = (out / 'device_report.md').read_text()
  for section in ('## Environment', '## SimCLR step and pipeline',
                  '## Two minutes of SimCLR PA', '## Paper shapes',
                  '## Profile'):
    assert section in md
