r"""Exports a trained encoder for PyTorch toolkits.

  ssl-pairs export --restore=runs/NAME --out=exports/NAME.safetensors
  python -m ssl_pairs.tools.export --restore=runs/NAME \
      --out=exports/NAME.safetensors [--step=N]

Writes the encoder of the run's checkpoint (the latest readable one, or
``--step``) as ``NAME.safetensors`` in torchvision's parameter names and
layouts for ResNet-18/34/50/101 (either stem; BatchNorm running statistics
included) or timm's for ViTs, and ``NAME.json`` beside it: architecture,
stem, width, padding, feature size, image size, input normalisation, the
checkpoint's step and the run's config (the same JSON is the file's
safetensors metadata, under ``ssl_pairs``). Encoder only: no projection head,
no classifier. Writing needs numpy and ``safetensors``, not torch.

A ResNet trained with ``model.padding='same'`` (the default, and every
checkpoint from before the option) is exported with a warning: torchvision
pads its stride-2 windows symmetrically, so the loaded network's features
approximate the encoder's rather than equal them (docs/export.md measures
how far) unless ``ssl_pairs.models.export.same_padding`` (a dozen lines of
torch, also in docs/export.md) patches it. How to load the file into
torchvision or timm and fine-tune it on VOC with a detection toolkit:
docs/export.md.
"""

import json
import os
import sys

from absl import flags
from absl import logging

from ssl_pairs.errors import UserError

FLAGS = flags.FLAGS


def _define_flags():
  """Only when run as a program: importing this module defines no flags, so
  tests (and other programs) can import it without a clash of names."""
  flags.DEFINE_string('restore', None, 'Workdir of a training run (or its '
                      'checkpoints/ folder).')
  flags.DEFINE_string('out', None, 'The .safetensors file to write; its '
                      '.json goes beside it.')
  flags.DEFINE_integer('step', 0, 'Checkpoint step to export; 0 = the '
                       'latest readable.')


SAME_PADDING_WARNING = (
    "WARNING: {where} was trained with model.padding='same' (flax pads a "
    'stride-2 window over an even-sized input by one pixel at the bottom and '
    "right only) but torchvision pads both sides, so torchvision's forward "
    "computes features close to, not equal to, this encoder's (docs/export.md"
    ' measures how close) unless the network is patched with same_padding '
    '(docs/export.md); fine to fine-tune from either way.')


def json_path(out: str) -> str:
  """The JSON written beside ``out`` (``a/b.safetensors`` → ``a/b.json``)."""
  return os.path.splitext(out)[0] + '.json'


def _write_text(path: str, text: str) -> None:
  with open(path, 'w') as f:
    f.write(text)


def export(restore: str, out: str, step=None, warn=None):
  """Exports ``restore``'s encoder to ``out`` (+ its JSON); returns the JSON.

  Args:
    restore: a workdir or its checkpoints/ folder.
    out: the .safetensors path to write (its folder is created).
    step: checkpoint step (None: the latest readable).
    warn: called with the 'same'-padding warning (default: stderr).
  """
  if not out.endswith('.safetensors'):
    raise UserError(f'--out={out} must end in .safetensors (the JSON is '
                    'written beside it with .json).')
  try:
    from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise UserError('Exporting needs the safetensors package; pip install '
                    'the safetensors version pinned in requirements.txt.'
                    ) from None
  import jax  # pylint: disable=g-import-not-at-top
  import ssl_pairs  # pylint: disable=g-import-not-at-top
  from ssl_pairs import checkpoint  # pylint: disable=g-import-not-at-top
  from ssl_pairs.models import export as export_lib  # pylint: disable=g-import-not-at-top
  config, step, variables, _ = checkpoint.restore_encoder(restore, step)
  model_config = config['model']
  export_lib.check_exportable(model_config)
  tensors = export_lib.state_dict(model_config, jax.device_get(variables))
  meta = export_lib.describe(model_config, tensors,
                             config.get('data', {}).get('image_size'))
  meta.update(file=os.path.basename(out), step=step,
              restored_from=os.path.abspath(restore),
              ssl_pairs_version=ssl_pairs.__version__, config=config)
  if meta.get('framework') == 'torchvision' and not meta['torch_exact']:
    (warn or (lambda s: print(s, file=sys.stderr, flush=True)))(
        SAME_PADDING_WARNING.format(where=restore))
  folder = os.path.dirname(os.path.abspath(out))
  os.makedirs(folder, exist_ok=True)
  text = json.dumps(meta, indent=1, default=str)
  umask = os.umask(0)
  os.umask(umask)
  # Written aside and renamed: a failed export never leaves half a file.
  for path, write in (
      (out, lambda p: save_file(tensors, p, metadata={
          'format': 'pt', 'ssl_pairs': text})),
      (json_path(out), lambda p: _write_text(p, text + '\n'))):
    tmp = f'{path}.tmp{os.getpid()}'
    try:
      write(tmp)
      os.chmod(tmp, 0o666 & ~umask)  # safetensors writes 0600.
      os.replace(tmp, path)
    except OSError as e:
      raise UserError(f'Could not write {path} ({e.strerror or e}); pass an '
                      '--out in a writable folder with free space.') from e
    finally:
      if os.path.exists(tmp):
        os.remove(tmp)
  return meta


def main(argv):
  if len(argv) > 1:
    raise UserError(f'Unexpected arguments {argv[1:]}; pass --restore=WORKDIR '
                    '--out=FILE.safetensors.')
  logging.set_verbosity(logging.ERROR)  # Orbax's read-only notices.
  if not FLAGS.restore or not FLAGS.out:
    raise UserError('Pass --restore=WORKDIR (a training run) and '
                    '--out=FILE.safetensors (where to write the encoder).')
  meta = export(FLAGS.restore, FLAGS.out, FLAGS.step or None)
  what = (f'{meta["architecture"]}, {meta["stem"]} stem, width '
          f'{meta["width_multiplier"]:g}, padding {meta["padding"]}'
          if meta['framework'] == 'torchvision' else
          f'{meta["architecture"]}/{meta["patch_size"]}')
  print(f'Wrote {FLAGS.out} ({meta["tensors"]} tensors, '
        f'{meta["parameters"]:,} parameters; {what}; step {meta["step"]}; '
        f'{meta["framework"]} names) and {json_path(FLAGS.out)}.')
  for note in meta.get('notes', []):
    print(f'  note: {note}')


if __name__ == '__main__':
  _define_flags()
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
