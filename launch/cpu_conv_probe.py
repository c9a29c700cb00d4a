r"""python launch/cpu_conv_probe.py --probe=network,conv,flags

Where XLA:CPU spends a SimCLR step, against PyTorch (BENCHMARKS.md, "Side by
side with PyTorch"). Three probes, each printing one line per measurement
(median of ``--repeats`` after two warm-up calls):

* ``network`` — forward and forward + backward of the ResNet-18 backbone
  (``--width``, 32 px, ``--batch`` images) under ``jax.jit``, with BatchNorm
  and with BatchNorm replaced by the identity; and the same network in
  PyTorch (``launch/torch_reference.py``) when torch is installed;
* ``conv`` — one 3×3 convolution at four (size, channels) shapes: forward,
  the input and weight gradients compiled on their own, the weight gradient
  as GEMMs (nine dots, or one im2col dot), ``jax.grad`` of the layer as one
  program (XLA's convolution, im2col + one dot, a sum of nine dots), and
  PyTorch's NCHW and channels-last kernels (``--dtype`` sets jax's dtype);
* ``flags`` — the full SimCLR train step in fresh processes under each
  ``XLA_FLAGS`` setting of ``FLAG_SETS`` (the loss of the first and last step
  is printed too: identical losses mean the flag did not change the kernels).
"""

import os
import statistics
import subprocess
import sys
import time

from absl import app
from absl import flags

import numpy as np
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAG_SETS = (
    '',
    '--xla_cpu_use_onednn=true',
    '--xla_cpu_experimental_onednn_custom_call=true --xla_cpu_use_xnnpack=false',
    '--xla_cpu_use_xnnpack=false',
    '--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY',
    '--xla_cpu_experimental_ynn_fusion_type=',
    '--xla_cpu_experimental_ynn_fusion_type=+individual_convolution',
    '--xla_cpu_experimental_ynn_fusion_type=-individual_convolution',
    '--xla_cpu_prefer_vector_width=512',
    '--xla_cpu_enable_concurrency_optimized_scheduler=false',
    '--xla_cpu_multi_thread_eigen=false',
)

_PROBES = flags.DEFINE_list('probe', ['network', 'conv', 'flags'],
                            'network, conv and/or flags.')
_WIDTH = flags.DEFINE_float('width', 0.25, 'ResNet-18 width multiplier.')
_BATCH = flags.DEFINE_integer('batch', 256, 'Images per call (network, conv); '
                              'pairs per step for flags is half of it.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed calls per measurement.')
_DTYPE = flags.DEFINE_enum('dtype', 'float32', ['float32', 'bfloat16'],
                           'Compute dtype of the conv probe and of the flags '
                           'probe\'s step.')
_STEP = flags.DEFINE_bool('step_only', False, 'Internal: run one flags-probe '
                          'step timing in this process.')


def median_ms(fn):
  fn()
  fn()
  times = []
  for _ in range(_REPEATS.value):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return 1e3 * statistics.median(times)


def torch_or_none():
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return torch


def probe_network():
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ssl_pairs.models import resnet  # pylint: disable=g-import-not-at-top

  class Identity(nn.Module):
    scale_init: object = None
    use_running_average: bool = False
    momentum: float = 0.9
    epsilon: float = 1e-5
    dtype: object = None

    def __call__(self, x):
      return x

  x = jnp.asarray(np.random.default_rng(0).random(
      (_BATCH.value, 32, 32, 3)), jnp.float32)
  batch_norm = resnet.nn.BatchNorm
  for label in ('with BatchNorm', 'BatchNorm → identity'):
    if label != 'with BatchNorm':
      resnet.nn.BatchNorm = Identity  # Looked up when the network is traced.
    try:
      model = resnet.resnet('resnet18', _WIDTH.value)
      variables = model.init(jax.random.key(0), x[:2])
      mutable = ['batch_stats'] if 'batch_stats' in variables else False

      def loss(params, variables=variables, model=model, mutable=mutable):
        out = model.apply({**variables, 'params': params}, x, train=True,
                          mutable=mutable)
        return jnp.sum((out[0] if mutable else out)**2)

      fwd = jax.jit(loss)
      grad = jax.jit(jax.grad(loss))
      p = variables['params']
      print(f'network jax {label}: forward '
            f'{median_ms(lambda: jax.block_until_ready(fwd(p))):.0f} ms, '
            'forward + backward '
            f'{median_ms(lambda: jax.block_until_ready(grad(p))):.0f} ms',
            flush=True)
    finally:
      resnet.nn.BatchNorm = batch_norm
  torch = torch_or_none()
  if torch is None:
    print('network torch: skipped (torch is not installed)')
    return
  from launch import torch_reference  # pylint: disable=g-import-not-at-top
  net = torch_reference.build('resnet18', _WIDTH.value, 2048, 128)[0]
  xt = torch.from_numpy(np.array(x)).permute(0, 3, 1, 2).contiguous()

  def step():
    net.zero_grad()
    (net(xt)**2).sum().backward()

  with torch.no_grad():
    forward = median_ms(lambda: net(xt))
  print(f'network torch {torch.__version__}: forward {forward:.0f} ms, '
        f'forward + backward {median_ms(step):.0f} ms', flush=True)


def _shifted(x):
  """The nine 3×3-neighbourhood shifts of x (NHWC, 'SAME' zero padding)."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  h, w = x.shape[1], x.shape[2]
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return [xp[:, i:i + h, j:j + w, :] for i in range(3) for j in range(3)]


def _conv_fns():
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  def xla(x, w):
    return jax.lax.conv_general_dilated(
        x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))

  def im2col(x, w):
    cols = jnp.concatenate(_shifted(x), axis=-1)
    return jnp.einsum('bhwk,ko->bhwo', cols, w.reshape(-1, w.shape[-1]))

  def nine_dots(x, w):
    return sum(jnp.einsum('bhwc,cd->bhwd', s, w[k // 3, k % 3])
               for k, s in enumerate(_shifted(x)))

  return {'xla': xla, 'im2col': im2col, 'nine dots': nine_dots}


def _weight_grad_fns():
  """The 3×3 weight gradient as GEMMs over the nine shifted inputs.

  dW[i, j] = Σ_{b,h,w} x_pad[b, h+i, w+j, :]ᵀ dy[b, h, w, :]: nine
  (C × BHW)·(BHW × D) products, or one (9C × BHW)·(BHW × D) product of the
  im2col matrix — what a hand-written backward would use instead of XLA's
  weight-gradient convolution.
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  def nine_dots(x, dy):
    out = jnp.stack([jnp.einsum('bhwc,bhwd->cd', s, dy,
                                preferred_element_type=jnp.float32)
                     for s in _shifted(x)])
    return out.reshape(3, 3, x.shape[-1], dy.shape[-1])

  def im2col(x, dy):
    cols = jnp.concatenate(_shifted(x), axis=-1)
    out = jnp.einsum('bhwk,bhwd->kd', cols, dy,
                     preferred_element_type=jnp.float32)
    return out.reshape(3, 3, x.shape[-1], dy.shape[-1])

  return {'nine dots': nine_dots, 'im2col': im2col}


def probe_conv():
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  torch = torch_or_none()
  fns = _conv_fns()
  b = _BATCH.value
  dtype = jnp.dtype(_DTYPE.value)
  for size, c in ((32, 16), (16, 32), (8, 64), (32, 64)):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(b, size, size, c)), dtype)
    w = jnp.asarray(0.1 * rng.normal(size=(3, 3, c, c)), dtype)
    dy = jnp.asarray(rng.normal(size=(b, size, size, c)), dtype)
    fwd = jax.jit(fns['xla'])
    dx = jax.jit(lambda dy, x=x, w=w: jax.vjp(fns['xla'], x, w)[1](dy)[0])
    dw = jax.jit(lambda dy, x=x, w=w: jax.vjp(fns['xla'], x, w)[1](dy)[1])
    parts = [f'forward {median_ms(lambda: fwd(x, w).block_until_ready()):.1f}',
             f'input grad {median_ms(lambda: dx(dy).block_until_ready()):.1f}',
             f'weight grad {median_ms(lambda: dw(dy).block_until_ready()):.1f}']
    reference = np.asarray(dw(dy), np.float32)
    for name, fn in _weight_grad_fns().items():
      g = jax.jit(fn)
      error = (np.max(np.abs(np.asarray(g(x, dy), np.float32) - reference)) /
               np.max(np.abs(reference)))
      parts.append(f'weight grad as {name} '
                   f'{median_ms(lambda g=g: g(x, dy).block_until_ready()):.1f}'
                   f' (max rel. diff {error:.0e})')
    for name, fn in fns.items():
      g = jax.jit(jax.grad(lambda x, w, fn=fn: jnp.sum(fn(x, w)**2),
                           argnums=(0, 1)))
      parts.append(f'grad({name}) '
                   f'{median_ms(lambda: jax.block_until_ready(g(x, w))):.1f}')
    if torch is not None:
      tdtype = torch.bfloat16 if dtype == jnp.bfloat16 else torch.float32
      xt = torch.from_numpy(np.array(x, np.float32)).permute(0, 3, 1, 2)
      xt = xt.to(tdtype).contiguous()
      wt = torch.from_numpy(np.array(w, np.float32)).permute(3, 2, 0, 1)
      wt = wt.to(tdtype).contiguous()
      xc = xt.to(memory_format=torch.channels_last)
      with torch.no_grad():
        parts.append('torch forward NCHW '
                     f'{median_ms(lambda: torch.conv2d(xt, wt, padding=1)):.1f}'
                     ' channels-last '
                     f'{median_ms(lambda: torch.conv2d(xc, wt, padding=1)):.1f}')
      xg, wg = xt.clone().requires_grad_(True), wt.clone().requires_grad_(True)

      def torch_grad(xg=xg, wg=wg):
        (torch.conv2d(xg, wg, padding=1)**2).sum().backward()

      parts.append(f'torch grad {median_ms(torch_grad):.1f}')
    print(f'conv 3×3 {dtype.name} b{b} {size}×{size}×{c} (ms): ' +
          ', '.join(parts),
          flush=True)


def step_timing():
  """One SimCLR step's median time and its losses (run per XLA_FLAGS set)."""
  import importlib  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from ssl_pairs import optim, sharding  # pylint: disable=g-import-not-at-top
  from ssl_pairs.methods import RunInfo, get_method  # pylint: disable=g-import-not-at-top
  from ssl_pairs.step import make_train_step  # pylint: disable=g-import-not-at-top
  from ssl_pairs.train import create_state  # pylint: disable=g-import-not-at-top
  c = importlib.import_module('configs.simclr_sp').get_config('runlocal')
  c.model.width_multiplier = _WIDTH.value
  c.model.dtype = _DTYPE.value
  c.batch_size = b = _BATCH.value // 2
  method = get_method(c, RunInfo(total_steps=1000, steps_per_epoch=100,
                                 num_images=10000, num_classes=10))
  schedule = optim.learning_rate_schedule(c.optim, 1000, 100, b)
  tx = optim.make_optimizer(c.optim, schedule)
  state = create_state(method, tx, c, sharding.make_mesh())
  rng = np.random.default_rng(0)
  batch = {'view1': rng.integers(0, 256, (b, 32, 32, 3)).astype(np.float32),
           'view2': rng.integers(0, 256, (b, 32, 32, 3)).astype(np.float32),
           'label': np.zeros(b, np.int32),
           'index': np.arange(b, dtype=np.int32)}
  step = jax.jit(make_train_step(method, tx, schedule, 0),
                 donate_argnums=0).lower(state, batch).compile()
  losses, times = [], []
  for i in range(_REPEATS.value + 2):
    t = time.perf_counter()
    state, metrics = step(state, batch)
    losses.append(float(metrics['loss']))
    if i >= 2:
      times.append(time.perf_counter() - t)
  print(f'RESULT {1e3 * statistics.median(times):.0f} {losses[0]:.6f} '
        f'{losses[-1]:.6f}')


def probe_flags():
  for xla_flags in FLAG_SETS:
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), '--step_only',
         f'--width={_WIDTH.value}', f'--batch={_BATCH.value}',
         f'--repeats={_REPEATS.value}', f'--dtype={_DTYPE.value}'],
        capture_output=True, text=True, check=False,
        env=dict(os.environ, XLA_FLAGS=xla_flags))
    result = [l for l in proc.stdout.splitlines() if l.startswith('RESULT')]
    if not result:
      print(f'flags {xla_flags or "(none)"}: failed: '
            f'{proc.stderr.strip().splitlines()[-1:]}', flush=True)
      continue
    ms, first, last = result[0].split()[1:]
    print(f'flags {xla_flags or "(none)"}: step {ms} ms, losses {first} → '
          f'{last}', flush=True)


def main(argv):
  del argv
  if _STEP.value:
    step_timing()
    return
  probes = {'network': probe_network, 'conv': probe_conv,
            'flags': probe_flags}
  for name in _PROBES.value:
    if name not in probes:
      raise app.UsageError(f'--probe takes network, conv and/or flags, not '
                           f'{name!r}.')
  for name in _PROBES.value:
    probes[name]()


if __name__ == '__main__':
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main, clear=False)
