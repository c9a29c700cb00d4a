r"""python launch/device/check.py [--tiny] [--out=DIR] [--data=DIR]

The GPU verification kit's stages (``launch/device/check.sh`` installs the
wheels and runs this). Each stage runs in its own subprocess with its own time
budget, so one that fails or hangs costs only its budget: its error is
recorded and the next stage runs. Everything lands in ``--out`` (default
``$OUT`` when set, else runs/device_check): ``device_report.md`` and
``device_report.json``, plus each stage's own JSON and log.

Stages (budgets in seconds on the GPU; ``--tiny`` shrinks every network, batch
and step count so the whole kit runs on this CPU in a few minutes):

* ``environment`` (15) — Python, jax/jaxlib, flax, optax, orbax, grain, torch
  versions; jax's devices; ``nvidia-smi``.
* ``unit_tests`` (70) — the fast tests of the step, losses, method wiring,
  sharding, device augmentation and remat, on the accelerator.
* ``benchmark`` (80) — ``launch/benchmark.py``: SimCLR ResNet-18 at 32 px,
  batch 512, bf16, host and device augmentation on the kit's CIFAR-10 subset:
  compile time, step ms, pipeline pairs/s, end-to-end pairs/s, TFLOP/s and %
  of the bf16 peak.
* ``torch`` (70) — the same network and batch as a PyTorch step
  (``launch/torch_reference.py``: bf16 autocast, channels-last), eager and
  with ``torch.compile``; the ratio to our step's pairs/s. Skipped with a note
  under ``--tiny``.
* ``train`` (130) — SimCLR PA at full width on the subset for about two
  minutes (steps from the benchmark's step time), then kNN top-1 on the 10k
  test set against the untrained encoder of the same seed.
* ``paper_shapes`` (70) — one step of SimCLR ResNet-50 (CIFAR stem, 64 px,
  batch 256, remat as the paper config sets it) and of DINO ViT-S/8 (64 px,
  batch 256): compile and step time, XLA's memory analysis and the device's
  peak memory.
* ``profile`` (35) — a ``jax.profiler`` trace of a few SimCLR steps; the ops
  taking the most time.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

STAGES = ('environment', 'unit_tests', 'benchmark', 'torch', 'train',
          'paper_shapes', 'profile')
BUDGET_S = {'environment': 15, 'unit_tests': 70, 'benchmark': 80, 'torch': 70,
            'train': 130, 'paper_shapes': 70, 'profile': 35}
UNIT_TESTS = ('tests/test_losses.py', 'tests/test_method_wiring.py',
              'tests/test_sharding.py', 'tests/test_device_augment.py',
              'tests/test_remat.py')
TINY_UNIT_TESTS = ('tests/test_losses.py',)


def _shape(tiny):
  """(arch, width, image size, batch, dtype) of the SimCLR stages."""
  return ('resnet_tiny', 1.0, 16, 16, 'float32') if tiny else (
      'resnet18', 1.0, 32, 512, 'bfloat16')


def _simclr_config(args, augment_on='device'):
  from configs import simclr_pa  # pylint: disable=g-import-not-at-top
  arch, width, size, batch, dtype = _shape(args.tiny)
  c = simclr_pa.get_config('runlocal')
  c.model.arch, c.model.width_multiplier, c.model.dtype = arch, width, dtype
  c.data.dataset = args.data
  c.data.image_size, c.batch_size = size, batch
  c.data.augment_on = augment_on
  c.data.pair_transform = 'none'
  c.data.load_size = 0
  c.data.classes, c.data.pairs_per_class = 'all', 0
  c.progress = False
  return c


# ------------------------------------------------------------------- stages


def stage_environment(args):
  import jax  # pylint: disable=g-import-not-at-top
  out = {'python': platform.python_version(), 'jax': jax.__version__,
         'devices': [str(d) for d in jax.devices()],
         'device_kind': jax.devices()[0].device_kind,
         'platform': jax.devices()[0].platform,
         'host': platform.node(), 'cpu_count': os.cpu_count()}
  import jaxlib  # pylint: disable=g-import-not-at-top
  out['jaxlib'] = jaxlib.__version__
  for name in ('flax', 'optax', 'orbax.checkpoint', 'grain', 'ml_collections',
               'numpy', 'torch'):
    try:
      module = __import__(name, fromlist=['_'])
      out[name] = getattr(module, '__version__', 'installed')
    except ImportError as e:
      out[name] = f'missing ({e})'
  try:
    out['nvidia_smi'] = subprocess.run(
        ['nvidia-smi', '--query-gpu=name,memory.total,driver_version',
         '--format=csv,noheader'], capture_output=True, text=True,
        timeout=10).stdout.strip()
  except (OSError, subprocess.TimeoutExpired):
    out['nvidia_smi'] = 'not available'
  return out


def stage_unit_tests(args):
  tests = TINY_UNIT_TESTS if args.tiny else UNIT_TESTS
  proc = subprocess.run(
      [sys.executable, '-m', 'pytest', '-q', '-o', 'addopts=', '-p',
       'no:cacheprovider', *tests], cwd=REPO, capture_output=True, text=True,
      timeout=BUDGET_S['unit_tests'] * (3 if args.tiny else 1) - 5)
  tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ''
  return {'tests': list(tests), 'exit': proc.returncode, 'summary': tail,
          'passed': proc.returncode == 0}


def stage_benchmark(args):
  arch, width, size, batch, dtype = _shape(args.tiny)
  path = os.path.join(args.out, 'benchmark_rows.json')
  cmd = [sys.executable, 'launch/benchmark.py',
         f'--settings={arch}:{width:g}:{size}:{batch}', f'--dtype={dtype}',
         '--methods=simclr',
         f'--augment_on={"host" if args.tiny else "host,device"}',
         f'--dataset={args.data}', f'--json={path}',
         f'--steps={3 if args.tiny else 20}',
         f'--pipeline_batches={2 if args.tiny else 10}',
         f'--workers={2 if args.tiny else max(2, (os.cpu_count() or 4) - 2)}']
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
  if proc.returncode:
    raise RuntimeError(proc.stderr.strip().splitlines()[-1]
                       if proc.stderr.strip() else f'exit {proc.returncode}')
  with open(path) as f:
    out = json.load(f)
  out['table'] = proc.stdout.strip()
  return out


def stage_torch(args):
  if args.tiny:
    return {'skipped': '--tiny: the PyTorch step runs on the GPU only'}
  import torch  # pylint: disable=g-import-not-at-top
  from launch import torch_reference  # pylint: disable=g-import-not-at-top
  if not torch.cuda.is_available():
    return {'skipped': 'torch sees no CUDA device'}
  c = _simclr_config(args, 'host')
  out = {'torch': torch.__version__,
         'eager': torch_reference.bench_device(c, 'cuda', steps=20)}
  try:
    out['compiled'] = torch_reference.bench_device(c, 'cuda', steps=20,
                                                   compile_model=True)
  except Exception as e:  # pylint: disable=broad-except
    out['compiled'] = {'error': f'{type(e).__name__}: {str(e)[:300]}'}
  bench = _read_stage(args, 'benchmark')
  ours = [r for r in bench.get('rows', []) if 'device aug' in r['setting']]
  if ours:  # The JAX step with views made on the device, batch on device.
    best_torch = max(v['pairs_per_s'] for v in (out['eager'],
                                                out['compiled'])
                     if 'pairs_per_s' in v)
    out['ours_step_pairs_s'] = ours[0]['step_pairs_s']
    out['ratio_ours_over_torch'] = ours[0]['step_pairs_s'] / best_torch
  return out


def stage_train(args):
  import jax  # pylint: disable=g-import-not-at-top
  from ssl_pairs import train  # pylint: disable=g-import-not-at-top
  c = _simclr_config(args, 'device')
  bench = _read_stage(args, 'benchmark')
  rows = [r for r in bench.get('rows', []) if 'device aug' in r['setting']]
  step_s = rows[0]['e2e_ms'] / 1e3 if rows else 0.05
  if args.tiny:
    c.data.augment_on = 'host'
  c.total_steps = 4 if args.tiny else max(50, min(20000, int(110 / step_s)))
  c.checkpoint_every_steps = c.total_steps
  c.eval.datasets = args.data
  c.eval.probe = False
  c.eval.train_limit = c.eval.test_limit = 0
  c.eval.knn_k = '20,200'
  workdir = os.path.join(args.out, 'train')
  t0 = time.time()
  report = train.run(c, os.path.join(workdir, 'trained'))
  seconds = time.time() - t0
  untrained = train.evaluate_init(c, os.path.join(workdir, 'untrained'))
  name = next(iter(report['results']))
  return {'steps': c.total_steps, 'batch': c.batch_size,
          'train_seconds': report.get('train_seconds'),
          'wall_seconds': seconds, 'devices': jax.device_count(),
          'trained': {k: report['results'][name][k] for k in
                      ('knn@20', 'knn@200')},
          'untrained': {k: untrained['results'][name][k] for k in
                        ('knn@20', 'knn@200')}}


def stage_paper_shapes(args):
  import jax  # pylint: disable=g-import-not-at-top
  import importlib  # pylint: disable=g-import-not-at-top
  from ssl_pairs import optim, sharding  # pylint: disable=g-import-not-at-top
  from ssl_pairs.methods import get_method, RunInfo  # pylint: disable=g-import-not-at-top
  from ssl_pairs.step import make_train_step  # pylint: disable=g-import-not-at-top
  from ssl_pairs.train import create_state  # pylint: disable=g-import-not-at-top
  shapes = ([('simclr_sp', 'resnet_tiny', 1.0, 16, 8),
             ('dino_sp', 'vit_test', 8, 16, 8)] if args.tiny else
            [('simclr_sp', 'resnet50', 1.0, 64, 256),
             ('dino_sp', 'vit_small', 8, 64, 256)])
  out = []
  for name, arch, width, size, batch in shapes:
    row = {'step': f'{name.split("_")[0]} {arch} {size}px b{batch}'}
    try:
      c = importlib.import_module(f'configs.{name}').get_config()
      c.model.arch, c.model.dtype = arch, 'bfloat16'
      if arch.startswith('vit'):
        c.model.patch_size = int(width)
      c.data.image_size, c.batch_size = size, batch
      row['remat'] = bool(c.model.remat)
      method = get_method(c, RunInfo(total_steps=100, steps_per_epoch=10,
                                     num_images=1000, num_classes=10))
      schedule = optim.learning_rate_schedule(c.optim, 100, 10, batch)
      tx = optim.make_optimizer(c.optim, schedule)
      mesh = sharding.make_mesh()
      state = create_state(method, tx, c, mesh)
      data = sharding.data_sharding(mesh)
      views = jax.device_put(
          jax.numpy.zeros((batch, size, size, 3), jax.numpy.uint8), data)
      batch_in = {'view1': views, 'view2': views,
                  'label': jax.device_put(jax.numpy.zeros(batch, 'int32'), data),
                  'index': jax.device_put(jax.numpy.arange(batch), data)}
      step = jax.jit(make_train_step(method, tx, schedule, 0),
                     donate_argnums=0)
      t0 = time.perf_counter()
      compiled = step.lower(state, batch_in).compile()
      row['compile_s'] = time.perf_counter() - t0
      m = compiled.memory_analysis()
      if m is not None:
        row['xla_argument_gib'] = m.argument_size_in_bytes / 2**30
        row['xla_temp_gib'] = m.temp_size_in_bytes / 2**30
      times = []
      for _ in range(3):
        t = time.perf_counter()
        state, metrics = compiled(state, batch_in)
        jax.block_until_ready(metrics['loss'])
        times.append(time.perf_counter() - t)
      row['step_ms'] = 1e3 * min(times[1:])
      stats = jax.devices()[0].memory_stats() or {}
      if 'peak_bytes_in_use' in stats:
        row['peak_gib'] = stats['peak_bytes_in_use'] / 2**30
      del state, compiled
    except Exception as e:  # pylint: disable=broad-except
      row['error'] = f'{type(e).__name__}: {str(e)[:300]}'
    out.append(row)
  return {'rows': out}


def stage_profile(args):
  import gzip  # pylint: disable=g-import-not-at-top
  import glob  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from ssl_pairs import optim, sharding  # pylint: disable=g-import-not-at-top
  from ssl_pairs.methods import get_method  # pylint: disable=g-import-not-at-top
  from ssl_pairs.step import make_train_step  # pylint: disable=g-import-not-at-top
  from ssl_pairs.train import create_state  # pylint: disable=g-import-not-at-top
  c = _simclr_config(args, 'host')
  method = get_method(c)
  schedule = optim.learning_rate_schedule(c.optim, 100, 10, c.batch_size)
  tx = optim.make_optimizer(c.optim, schedule)
  state = create_state(method, tx, c, sharding.make_mesh())
  size, b = c.data.image_size, c.batch_size
  views = jax.numpy.zeros((b, size, size, 3), jax.numpy.uint8)
  batch = {'view1': views, 'view2': views,
           'label': jax.numpy.zeros(b, 'int32'), 'index': jax.numpy.arange(b)}
  step = jax.jit(make_train_step(method, tx, schedule, 0), donate_argnums=0)
  state, m = step(state, batch)
  jax.block_until_ready(m['loss'])
  trace_dir = os.path.join(args.out, 'profile')
  with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
    for _ in range(5):
      state, m = step(state, batch)
    jax.block_until_ready(m['loss'])
  totals = {}
  files = glob.glob(os.path.join(trace_dir, '**', '*.trace.json.gz'),
                    recursive=True)
  for path in files:
    with gzip.open(path, 'rt') as f:
      events = json.load(f)
    events = events.get('traceEvents', events) if isinstance(events, dict) \
        else events
    for e in events:
      if e.get('ph') == 'X' and 'dur' in e:
        totals[e['name']] = totals.get(e['name'], 0.0) + e['dur']
  # Python frames ('$file:line name') and the runtime's own wrappers are not
  # ops; on a GPU the rest are the device's kernels.
  totals = {n: t for n, t in totals.items()
            if not n.startswith('$') and 'ThunkExecutor' not in n and
            not n.startswith('PjitFunction')}
  top = sorted(totals.items(), key=lambda kv: -kv[1])[:15]
  return {'trace_files': [os.path.relpath(p, args.out) for p in files],
          'top_ops_ms': [(name[:80], round(us / 1e3, 3)) for name, us in top]}


def make_tiny_data(root):
  """A 4-class 16-px image folder with train/test splits (for --tiny)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[0:16, 0:16]
  for c in range(4):
    colour = rng.uniform(40, 215, 3)
    stripes = ((xx + c * yy) // (2 + c)) % 2
    for split, n in (('train', 24), ('test', 8)):
      folder = os.path.join(root, split, f'class{c}')
      os.makedirs(folder, exist_ok=True)
      for i in range(n):
        img = colour + 40 * stripes[..., None] + rng.normal(0, 12, (16, 16, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
            os.path.join(folder, f'{i}.png'))
  print(root)
  return 0


# ----------------------------------------------------------------- driver


def _stage_path(args, name):
  return os.path.join(args.out, f'stage_{name}.json')


def _read_stage(args, name):
  try:
    with open(_stage_path(args, name)) as f:
      return json.load(f).get('result') or {}
  except (OSError, ValueError):
    return {}


def run_one_stage(args):
  """In the stage's own process: run it, write its JSON (result or error)."""
  t0 = time.time()
  record = {'stage': args.stage}
  try:
    record['result'] = globals()[f'stage_{args.stage}'](args)
    record['ok'] = True
  except Exception as e:  # pylint: disable=broad-except
    record['ok'] = False
    record['error'] = f'{type(e).__name__}: {e}'
    record['traceback'] = traceback.format_exc()[-3000:]
  record['seconds'] = round(time.time() - t0, 1)
  with open(_stage_path(args, args.stage), 'w') as f:
    json.dump(record, f, indent=1, default=str)
  return 0 if record['ok'] else 1


def run_all(args):
  os.makedirs(args.out, exist_ok=True)
  scale = 6 if args.tiny else 1  # A loaded 2-core CPU compiles slowly.
  records, t_all = [], time.time()
  for name in STAGES:
    budget = BUDGET_S[name] * scale
    cmd = [sys.executable, os.path.abspath(__file__), f'--stage={name}',
           f'--out={args.out}', f'--data={args.data}'] + (
               ['--tiny'] if args.tiny else [])
    log = os.path.join(args.out, f'stage_{name}.log')
    t0 = time.time()
    print(f'[{name}] budget {budget} s ...', flush=True)
    try:
      with open(log, 'w') as f:
        subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT,
                       timeout=budget)
      record = _load(args, name)
    except subprocess.TimeoutExpired:
      record = {'stage': name, 'ok': False,
                'error': f'over its {budget} s budget (stopped)'}
    record['seconds'] = round(time.time() - t0, 1)
    records.append(record)
    print(f'[{name}] {"ok" if record.get("ok") else "FAILED"} in '
          f'{record["seconds"]} s' + ('' if record.get('ok') else
                                      f': {record.get("error", "")[:200]}'),
          flush=True)
  report = {'tiny': args.tiny, 'seconds': round(time.time() - t_all, 1),
            'commit': _commit(), 'stages': records}
  with open(os.path.join(args.out, 'device_report.json'), 'w') as f:
    json.dump(report, f, indent=1, default=str)
  text = markdown(report)
  with open(os.path.join(args.out, 'device_report.md'), 'w') as f:
    f.write(text)
  print(text)
  return 0


def _load(args, name):
  try:
    with open(_stage_path(args, name)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {'stage': name, 'ok': False,
            'error': 'the stage died without a result (see its log)'}


def _commit():
  try:
    return subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO,
                          capture_output=True, text=True).stdout.strip()
  except OSError:
    return '?'


def markdown(report):
  """device_report.md: one section per stage."""
  lines = ['# Device check', '',
           f'Commit {report["commit"]}; {"--tiny (CPU) " if report["tiny"] else ""}'
           f'{report["seconds"]} s in all.', '',
           '| stage | result | seconds |', '|---|---|---|']
  for r in report['stages']:
    lines.append(f'| {r["stage"]} | {"ok" if r.get("ok") else "FAILED: " + r.get("error", "")[:150]} | {r["seconds"]} |')
  by = {r['stage']: r.get('result') or {} for r in report['stages']}
  env = by.get('environment', {})
  if env:
    lines += ['', '## Environment', '', '```',
              json.dumps(env, indent=1, default=str), '```']
  if by.get('unit_tests'):
    lines += ['', '## Unit tests', '', by['unit_tests'].get('summary', '')]
  if by.get('benchmark'):
    lines += ['', '## SimCLR step and pipeline', '',
              by['benchmark'].get('table', '')]
  if by.get('torch'):
    lines += ['', '## PyTorch step, same network and batch', '', '```',
              json.dumps(by['torch'], indent=1, default=str), '```']
  if by.get('train'):
    t = by['train']
    lines += ['', '## Two minutes of SimCLR PA', '',
              f'{t["steps"]} steps of batch {t["batch"]} in '
              f'{t["train_seconds"]} s: kNN@20/@200 top-1 '
              f'{t["trained"]["knn@20"]:.2f} / {t["trained"]["knn@200"]:.2f} '
              f'against the untrained encoder\'s '
              f'{t["untrained"]["knn@20"]:.2f} / '
              f'{t["untrained"]["knn@200"]:.2f}.']
  if by.get('paper_shapes'):
    lines += ['', '## Paper shapes, one step (bf16)', '',
              '| step | remat | compile s | step ms | XLA args GiB | '
              'XLA temp GiB | peak GiB | error |', '|---|---|---|---|---|---|---|---|']
    for r in by['paper_shapes']['rows']:
      cell = lambda k, f='{:.2f}': f.format(r[k]) if k in r else '–'
      lines.append(f'| {r["step"]} | {r.get("remat", "–")} | '
                   f'{cell("compile_s", "{:.1f}")} | {cell("step_ms", "{:.1f}")} | '
                   f'{cell("xla_argument_gib")} | {cell("xla_temp_gib")} | '
                   f'{cell("peak_gib")} | {r.get("error", "")} |')
  if by.get('profile'):
    lines += ['', '## Profile: top ops (ms over 5 steps)', '',
              '| op | ms |', '|---|---|']
    lines += [f'| {n} | {ms} |' for n, ms in by['profile']['top_ops_ms']]
  return '\n'.join(lines) + '\n'


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[1])
  parser.add_argument('--tiny', action='store_true',
                      help='Tiny networks and data: the kit on a CPU.')
  parser.add_argument('--out', default=os.environ.get('OUT') or os.path.join(
      REPO, 'runs', 'device_check'))
  parser.add_argument('--data', default='', help='CIFAR-10 folder (default: '
                      'the unpacked .devdata, or a synthetic one with --tiny).')
  parser.add_argument('--stage', default='', help=argparse.SUPPRESS)
  parser.add_argument('--make_tiny_data', default='', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.make_tiny_data:
    return make_tiny_data(args.make_tiny_data)
  args.out = os.path.abspath(args.out)
  if not args.data:
    raise SystemExit('check.py needs --data (check.sh passes it).')
  if args.stage:
    return run_one_stage(args)
  return run_all(args)


if __name__ == '__main__':
  sys.exit(main())
