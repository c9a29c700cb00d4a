r"""python launch/benchmark.py --append

Throughput of a method's train step and of the input pipeline, measured
separately and end to end, side by side in one run.

For each method (``--methods``, default SimCLR), setting (arch, width — the
patch size for a ViT —, resolution, batch; ``--preset=gpu`` gives three GPU
settings: ResNet-18 32 px b512, ResNet-50 64 px b256, ViT-S/8 64 px b256) and
place of augmentation (``--augment_on=host,device``: views made by the grain
workers, or inside the jitted step from the uint8 images the host gathers):

* **pipeline** — the grain pipeline alone (Tiny-ImageNet semantic pairs, the
  strong augmentation, ``data.num_workers`` threads) producing uint8 batches on
  the host: pairs/s over ``--pipeline_batches`` batches;
* **step** — the jitted train step alone on a batch already on the device:
  compile time, median step time over ``--steps`` steps, pairs/s, model FLOPs
  per step (XLA cost analysis) and achieved FLOP/s;
* **end to end** — the step fed by the pipeline through the device iterator,
  as in training: median step time and pairs/s;
* **ratio** — pipeline pairs/s ÷ step pairs/s (≥ 1 means the step never waits);
* **% of peak** — achieved FLOP/s over the device's dense bf16 peak, on GPUs
  whose peak is known (H100, H200, A100).

``--compare_torch`` adds a row per SimCLR ResNet setting for the PyTorch
practice our users know (``launch/torch_reference.py``: the same network,
projector and NT-Xent in eager PyTorch with SGD, on all CPU threads), timed
on the same host-augmented batches right after ours: step alone on one batch,
and end to end fed by the same grain pipeline. Its GFLOP columns reuse XLA's
count for the same network, so GFLOP/s compares the two directly.

With device augmentation the step includes making the views, and the
pipeline only gathers images: the two rows of a setting compare where the
augmentation work is done.

Prints a markdown table; ``--append`` adds it with the machine description to
BENCHMARKS.md. One pair = two views.
"""

import datetime
import os
import platform
import statistics
import sys
import time

from absl import app
from absl import flags

import jax

import importlib
from ssl_pairs import optim
from ssl_pairs import sharding
from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data import pipeline
from ssl_pairs.data import sources
from ssl_pairs.methods import get_method
from ssl_pairs.step import make_train_step
from ssl_pairs.train import create_state
from launch import torch_reference  # torch itself is imported only if used.
# pylint: enable=g-import-not-at-top,wrong-import-position

PRESETS = {
    'cpu': ['resnet18:0.25:32:128', 'resnet18:0.25:64:128'],
    'gpu': ['resnet18:1:32:512', 'resnet50:1:64:256', 'vit_small:8:64:256'],
}
# Dense bf16 peak FLOP/s by device kind (vendor data sheets, SXM parts).
PEAK_BF16 = {'H100': 989e12, 'H200': 989e12, 'A100': 312e12}

_SETTINGS = flags.DEFINE_list(
    'settings', [], 'arch:width:image_size:batch entries (for a ViT the '
    'width field is the patch size); empty: --preset\'s.')
_PRESET = flags.DEFINE_enum('preset', 'cpu', list(PRESETS),
                            'Settings when --settings is empty.')
_METHODS = flags.DEFINE_list('methods', ['simclr'],
                             'Methods (configs/<method>_sp.py).')
_AUGMENT_ON = flags.DEFINE_list('augment_on', ['host', 'device'],
                                'Where views are made: host and/or device.')
_STEPS = flags.DEFINE_integer('steps', 10, 'Timed steps (after 2 warm-up).')
_PIPELINE_BATCHES = flags.DEFINE_integer('pipeline_batches', 20,
                                         'Batches timed for the pipeline.')
_WORKERS = flags.DEFINE_integer('workers', 2, 'grain threads.')
_DATASET = flags.DEFINE_string('dataset', 'tiny_imagenet', 'Pairs from here.')
_DTYPE = flags.DEFINE_enum('dtype', 'float32', ['float32', 'bfloat16'],
                           'Compute dtype.')
_APPEND = flags.DEFINE_bool('append', False, 'Append to BENCHMARKS.md.')
_JSON = flags.DEFINE_string('json', '', 'Also write the rows to this JSON file.')
_COMPARE_TORCH = flags.DEFINE_bool(
    'compare_torch', False, 'Also time a plain PyTorch SimCLR step '
    '(launch/torch_reference.py) on the same network and batches, side by '
    'side; SimCLR ResNet settings with host augmentation only; skipped with '
    'a note when torch is not installed.')


def machine_description() -> str:
  cpu = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          cpu = line.split(':', 1)[1].strip()
          break
  except OSError:
    pass
  devices = jax.devices()
  return (f'{devices[0].device_kind} × {len(devices)} ({devices[0].platform}); '
          f'host CPU {cpu}, {os.cpu_count()} cores; jax {jax.__version__}, '
          f'Python {platform.python_version()}')


def peak_flops() -> float:
  kind = jax.devices()[0].device_kind
  for name, peak in PEAK_BF16.items():
    if name in kind:
      return peak * jax.device_count()
  return float('nan')


def config_for(method, arch, width, size, batch, augment_on):
  c = importlib.import_module(f'configs.{method}_sp').get_config('runlocal')
  c.model.arch = arch
  if arch.startswith('vit'):
    c.model.patch_size = int(width)
  else:
    c.model.width_multiplier = float(width)
  c.model.dtype = _DTYPE.value
  c.data.augment_on = augment_on
  c.data.dataset = _DATASET.value
  c.data.image_size = int(size)
  c.batch_size = int(batch)
  c.data.num_workers = _WORKERS.value
  return c


def bench_pipeline(batches, n):
  import grain  # pylint: disable=g-import-not-at-top
  it = iter(batches.to_iter_dataset(grain.ReadOptions(
      num_threads=_WORKERS.value, prefetch_buffer_size=2 * _WORKERS.value)))
  next(it)
  t0 = time.perf_counter()
  for _ in range(n):
    b = next(it)
  dt = time.perf_counter() - t0
  return n * len(b['index']) / dt


def bench_setting(method_name, entry, augment_on):
  arch, width, size, batch = entry.split(':')
  config = config_for(method_name, arch, width, size, batch, augment_on)
  mesh = sharding.make_mesh()
  src = sources.load_split(config.data.dataset, 'train',
                           sources.resolve_data_dir(''), config.data.image_size)
  ps = pairs_lib.build_pair_set(config.data, src)
  batches = pipeline.train_batches(src, ps, config.data, config.batch_size, 0)
  pipe = bench_pipeline(batches, _PIPELINE_BATCHES.value)

  method = get_method(config)
  schedule = optim.learning_rate_schedule(config.optim, 1000, 100,
                                          config.batch_size)
  tx = optim.make_optimizer(config.optim, schedule)
  state = create_state(method, tx, config, mesh)
  data = sharding.data_sharding(mesh)
  state_sharding = jax.tree.map(lambda x: x.sharding, state)
  step = jax.jit(make_train_step(method, tx, schedule, 0),
                 in_shardings=(state_sharding, data),
                 out_shardings=(state_sharding, sharding.replicated(mesh)),
                 donate_argnums=0)
  host_batch = batches[0]
  device_batch = jax.tree.map(lambda x: jax.device_put(x, data), host_batch)
  t0 = time.perf_counter()
  compiled = step.lower(state, device_batch).compile()
  compile_s = time.perf_counter() - t0
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get('flops', float('nan'))) if cost else float('nan')

  def timed(get_batch, n):
    nonlocal state
    times = []
    for i in range(n + 2):
      b = get_batch()
      t = time.perf_counter()
      state, m = compiled(state, b)
      jax.block_until_ready(m['loss'])
      if i >= 2:
        times.append(time.perf_counter() - t)
    return statistics.median(times)

  step_s = timed(lambda: device_batch, _STEPS.value)
  it = pipeline.DeviceIterator(batches, data, num_threads=_WORKERS.value)
  # End to end: the time between consecutive results includes any wait for
  # data, so measure wall time per step over the whole window.
  for _ in range(2):
    state, m = compiled(state, next(it))
  jax.block_until_ready(m['loss'])
  times = []
  for _ in range(_STEPS.value):
    t = time.perf_counter()
    state, m = compiled(state, next(it))
    jax.block_until_ready(m['loss'])
    times.append(time.perf_counter() - t)
  e2e_s = statistics.median(times)
  b = config.batch_size
  name = (f'{arch}/{width}' if arch.startswith('vit') else
          f'{arch} w{width}')
  it.close()  # Stop feeding our step (its prefetch threads end).
  rows = [{'setting': f'{method_name} {name} {size}px b{batch} '
                      f'{augment_on} aug',
           'compile_s': compile_s, 'step_ms': 1e3 * step_s,
           'step_pairs_s': b / step_s, 'pipeline_pairs_s': pipe,
           'e2e_ms': 1e3 * e2e_s, 'e2e_pairs_s': b / e2e_s,
           'gflop_step': flops / 1e9, 'gflop_s': flops / step_s / 1e9,
           'peak_pct': 100 * flops / step_s / peak_flops(),
           'ratio': pipe / (b / step_s)}]
  if (_COMPARE_TORCH.value and augment_on == 'host' and
      method_name == 'simclr' and not arch.startswith('vit') and
      torch_reference.available()):
    del state, compiled  # Free our step's memory before torch's runs.
    import grain  # pylint: disable=g-import-not-at-top
    host_iter = iter(batches.to_iter_dataset(grain.ReadOptions(
        num_threads=_WORKERS.value, prefetch_buffer_size=2 * _WORKERS.value)))
    t_step, t_e2e = torch_reference.bench(config, host_batch, host_iter,
                                          _STEPS.value)
    rows.append({'setting': f'pytorch {torch_reference.version()} {name} '
                            f'{size}px b{batch} host aug',
                 'compile_s': float('nan'), 'step_ms': 1e3 * t_step,
                 'step_pairs_s': b / t_step, 'pipeline_pairs_s': pipe,
                 'e2e_ms': 1e3 * t_e2e, 'e2e_pairs_s': b / t_e2e,
                 'gflop_step': flops / 1e9, 'gflop_s': flops / t_step / 1e9,
                 'peak_pct': float('nan'), 'ratio': pipe / (b / t_step)})
  return rows


def table(rows):
  head = ('| setting | compile s | step ms (median) | step pairs/s | '
          'pipeline pairs/s | pipeline ÷ step | end-to-end ms | end-to-end '
          'pairs/s | GFLOP/step | GFLOP/s | % of bf16 peak |')
  lines = [head, '|' + '---|' * 11]
  for r in rows:
    lines.append(
        f'| {r["setting"]} | '
        + ('–' if r['compile_s'] != r['compile_s'] else
           f'{r["compile_s"]:.1f}') + f' | {r["step_ms"]:.0f} | '
        f'{r["step_pairs_s"]:.0f} | {r["pipeline_pairs_s"]:.0f} | '
        f'{r["ratio"]:.1f}× | {r["e2e_ms"]:.0f} | {r["e2e_pairs_s"]:.0f} | '
        f'{r["gflop_step"]:.4g} | {r["gflop_s"]:.4g} | '
        + ('–' if r['peak_pct'] != r['peak_pct'] else f'{r["peak_pct"]:.1f}')
        + ' |')
  return '\n'.join(lines)


def main(argv):
  del argv
  settings = _SETTINGS.value or PRESETS[_PRESET.value]
  for where in _AUGMENT_ON.value:
    if where not in ('host', 'device'):
      raise app.UsageError(f'--augment_on takes host and/or device, not '
                           f'{where!r}.')
  if _COMPARE_TORCH.value:
    if not torch_reference.available():
      print('--compare_torch: torch is not installed, so the PyTorch rows are '
            'skipped (pip install torch, e.g. the CPU wheel from '
            'https://download.pytorch.org/whl/cpu).')
    elif 'host' not in _AUGMENT_ON.value:
      raise app.UsageError('--compare_torch feeds torch host-augmented '
                           'batches; add host to --augment_on.')
  rows = [row for m in _METHODS.value for s in settings
          for where in _AUGMENT_ON.value for row in bench_setting(m, s, where)]
  text = table(rows)
  print(text)
  if _JSON.value:
    import json  # pylint: disable=g-import-not-at-top
    with open(_JSON.value, 'w') as f:
      json.dump({'machine': machine_description(), 'dtype': _DTYPE.value,
                 'rows': rows}, f, indent=1)
  if _APPEND.value:
    path = os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), 'BENCHMARKS.md')
    with open(path, 'a') as f:
      f.write(f'\n### launch/benchmark.py, {datetime.date.today()}\n\n'
              f'Machine: {machine_description()}. dtype {_DTYPE.value}, '
              f'{_WORKERS.value} pipeline threads, median of {_STEPS.value} '
              f'steps.\nCommand: `python launch/benchmark.py '
              f'{" ".join(sys.argv[1:])}`\n\n{text}\n')


if __name__ == '__main__':
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main, clear=False)
