r"""python launch/memory_analysis.py [--shapes=paper] [--compile]

Memory of a train step with and without ``model.remat``, without running it:

* **saved activations** — the bytes ``jax.vjp`` keeps from the forward pass
  for the backward pass (its residuals, from ``jax.eval_shape``: nothing is
  computed), which remat cuts to the blocks' inputs;
* with ``--compile``, XLA's memory analysis of the compiled gradient on this
  machine's backend (arguments and temporaries). On the CPU backend the
  temporaries do not shrink with remat (XLA:CPU's buffer assignment keeps the
  recomputed values live), so for a GPU's needs read the first column — or run
  this on the GPU, where the compiled numbers are the real ones.

Shapes: ``paper`` = the study's GPU shapes (SimCLR ResNet-50, CIFAR stem,
64 px, batch 256 — 512 images per step — and DINO ViT-S/8 64 px batch 256);
``cpu`` = ResNet-18 width 1/4 at 32 px, batch 128. Prints a markdown table.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
# pylint: enable=g-import-not-at-top,wrong-import-position

SHAPES = {
    'paper': [('simclr_sp', 'resnet50', 1.0, 64, 256),
              ('dino_sp', 'vit_small', 8, 64, 256)],
    'cpu': [('simclr_sp', 'resnet18', 0.25, 32, 128)],
}


def _step_parts(config_name, arch, width, size, batch, remat, dtype):
  import importlib  # pylint: disable=g-import-not-at-top
  from ssl_pairs import optim  # pylint: disable=g-import-not-at-top
  from ssl_pairs import sharding  # pylint: disable=g-import-not-at-top
  from ssl_pairs.methods import RunInfo, get_method  # pylint: disable=g-import-not-at-top
  from ssl_pairs.train import create_state  # pylint: disable=g-import-not-at-top
  config = importlib.import_module(f'configs.{config_name}').get_config()
  config.model.arch = arch
  if arch.startswith('vit'):
    config.model.patch_size = int(width)
  else:
    config.model.width_multiplier = float(width)
  config.model.remat = remat
  config.model.dtype = dtype
  config.data.image_size = size
  config.batch_size = batch
  method = get_method(config, RunInfo(total_steps=10, steps_per_epoch=5))
  mesh = sharding.make_mesh(jax.devices()[:1])
  tx = optim.make_optimizer(config.optim, lambda s: 0.1)
  state = jax.eval_shape(lambda: create_state(method, tx, config, mesh))
  x = jax.ShapeDtypeStruct((batch, size, size, 3), jnp.float32)

  def loss(params, batch_stats, method_state, v1, v2):
    return method.loss(params, batch_stats, method_state,
                       {'view1': v1, 'view2': v2}, jax.random.key(0), 0)[0]

  return loss, (state.params, state.batch_stats, state.method_state, x, x)


def saved_activation_bytes(config_name, arch, width, size, batch, remat,
                           dtype='float32') -> int:
  """Bytes of the residuals jax.vjp saves for the backward pass."""
  loss, args = _step_parts(config_name, arch, width, size, batch, remat,
                           dtype)
  params, rest = args[0], args[1:]
  residuals = jax.eval_shape(
      lambda p, *r: jax.vjp(lambda q: loss(q, *r), p)[1], params, *rest)
  return int(sum(np.prod(l.shape) * l.dtype.itemsize
                 for l in jax.tree.leaves(residuals)))


def compiled_bytes(config_name, arch, width, size, batch, remat,
                   dtype='float32'):
  """(argument, temporary) bytes of the compiled gradient (this backend)."""
  loss, args = _step_parts(config_name, arch, width, size, batch, remat,
                           dtype)
  m = jax.jit(jax.grad(loss)).lower(*args).compile().memory_analysis()
  return m.argument_size_in_bytes, m.temp_size_in_bytes


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[1])
  parser.add_argument('--shapes', default='paper', choices=sorted(SHAPES))
  parser.add_argument('--dtype', default='float32',
                      choices=['float32', 'bfloat16'])
  parser.add_argument('--compile', action='store_true',
                      help='Also compile and report XLA\'s memory analysis.')
  args = parser.parse_args()
  gib = 2.0**30
  header = ('| step | remat | saved activations GiB |' +
            (' XLA arguments GiB | XLA temporaries GiB |' if args.compile
             else ''))
  lines = [f'Backend: {jax.devices()[0].device_kind}, jax {jax.__version__}, '
           f'dtype {args.dtype}.', '', header,
           '|---|---|---|' + ('---|---|' if args.compile else '')]
  for shape in SHAPES[args.shapes]:
    name, arch, width, size, batch = shape
    for remat in (False, True):
      row = (f'| {name.split("_")[0]} {arch} w{width:g} {size}px b{batch} | '
             f'{remat} | {saved_activation_bytes(*shape, remat, args.dtype) / gib:.2f} |')
      if args.compile:
        a, t = compiled_bytes(*shape, remat, args.dtype)
        row += f' {a / gib:.2f} | {t / gib:.2f} |'
      lines.append(row)
      print(lines[-1], flush=True)
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
