r"""python launch/peer_lightly.py --pairs=runs/cp_load64/pairs/semantic_pairs.csv --workdir=runs/peer/semantic_s0 --seed=0

The peer calibration of ``compare_pairs`` re-run here: SimCLR written with
lightly's own modules (``ResNetGenerator``, ``SimCLRProjectionHead``,
``NTXentLoss``, ``SimCLRViewTransform``) in PyTorch, the recipe of lightly's
CIFAR-10 benchmark (SGD lr 0.06 × batch/128, momentum 0.9, weight decay 5e-4,
cosine; colour-jitter strength 0.5, no blur; each view through the encoder in
its own call; backbone = the generator's children but the classifier, then
global average pooling, as the benchmark builds it), trained on one of our
pair files, so the pairs, images and step count are ours. The frozen
backbone's features are then scored by *our* evaluation (``ssl_pairs.evals``:
kNN@20/200 and the L-BFGS probe on CIFAR-10 and Tiny-ImageNet val at the
pretraining resolution), so the only thing that differs from an ssl_pairs run
is the training implementation. Several seeds give the peer's own seed spread,
which a single published number cannot.

Optional, like ``torch_reference``: needs torch, torchvision and lightly,
which are not project requirements (see BENCHMARKS.md for how they were
installed offline). Writes ``<workdir>/eval.json`` and ``metrics.jsonl``.
"""

import json
import math
import os
import sys
import time

from absl import flags
import numpy as np

from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data import sources as sources_lib
from ssl_pairs.images import MEAN as _MEAN, STD as _STD  # = lightly's.
# pylint: enable=g-import-not-at-top,wrong-import-position

_PAIRS = flags.DEFINE_string('pairs', None, 'Pair CSV (anchor, partner, class) '
                             'with paths relative to the Tiny-ImageNet root.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output folder.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed (torch, shuffling, crops).')
_EPOCHS = flags.DEFINE_float('epochs', 8.0, 'Epochs over the pair file (0: '
                             'evaluate the randomly initialised network).')
_BATCH = flags.DEFINE_integer('batch_size', 128, 'Pairs per step.')
_LR = flags.DEFINE_float('lr', 0.06, 'SGD learning rate at batch 128.')
_WIDTH = flags.DEFINE_float('width', 0.25, 'ResNetGenerator width (0.25 = 16 '
                            'base channels).')
_PROJ_HIDDEN = flags.DEFINE_integer('proj_hidden_dim', 2048, 'Projector '
                                    'hidden width (ssl_pairs compare_pairs: '
                                    '2048; lightly\'s benchmark: the feature '
                                    'width).')
_TEMPERATURE = flags.DEFINE_float('temperature', 0.5, 'NT-Xent temperature.')
_IMAGE_SIZE = flags.DEFINE_integer('image_size', 32, 'View resolution.')
_THREADS = flags.DEFINE_integer('threads', 0, 'torch threads (0: default).')
_VIEWS = flags.DEFINE_enum(
    'views', 'lightly', ['lightly', 'ssl_pairs'],
    'Who makes the two views of each pair: lightly\'s SimCLRViewTransform '
    '(torchvision, on the decoded files), or the ssl_pairs grain pipeline of '
    'the run whose config.json --views_config names (same pairs, crops and '
    'colour ops as that run; a bisection tool).')
_VIEWS_CONFIG = flags.DEFINE_string(
    'views_config', '', 'config.json of an ssl_pairs run (--views=ssl_pairs).')
# One switch per remaining difference to ssl_pairs' SimCLR, for bisection;
# the defaults are lightly's benchmark.
_STEM_RELU = flags.DEFINE_bool(
    'stem_relu', False, 'Put back the ReLU after the stem BatchNorm (lightly\'s '
    'benchmark backbone drops it: it lives in ResNet.forward, not in a child; '
    'ssl_pairs has it).')
_ONE_PASS = flags.DEFINE_bool(
    'one_pass', False, 'Forward both views in one call, so BatchNorm sees both '
    '(ssl_pairs\' default) instead of one call per view (lightly\'s).')
_DECAY_ALL = flags.DEFINE_bool(
    'decay_all', True, 'Weight decay on every parameter (torch SGD, lightly) '
    'or, with --nodecay_all, only on conv/linear kernels (ssl_pairs).')
_INIT = flags.DEFINE_enum(
    'init', 'pytorch', ['pytorch', 'ssl_pairs'],
    'Initialisation: torch.nn defaults (lightly) or ssl_pairs\' default '
    '(He fan-out normal convolutions, last BN of each block at zero, '
    'truncated LeCun-normal linear kernels, zero biases).')
_EVAL = flags.DEFINE_list('eval_datasets', ['cifar10', 'tiny_imagenet'],
                          'Evaluation sets (our loaders and protocol).')



def ssl_pairs_init(torch, model):
  """Re-initialises ``model`` as ``ssl_pairs.models`` (model.init=default)."""
  nn = torch.nn
  for name, m in model.named_modules():
    if isinstance(m, nn.Conv2d):
      nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
    elif isinstance(m, nn.Linear):
      # flax lecun_normal: truncated at ±2σ, σ rescaled to keep var 1/fan_in.
      std = (1.0 / m.in_features) ** 0.5 / 0.87962566103423978
      nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
      if m.bias is not None:
        nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
      last = name.endswith('.bn2')  # The last BN of each BasicBlock.
      nn.init.constant_(m.weight, 0.0 if last else 1.0)
      nn.init.zeros_(m.bias)


def main(argv):
  del argv
  import torch  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from lightly.loss import NTXentLoss  # pylint: disable=g-import-not-at-top
  from lightly.models import ResNetGenerator  # pylint: disable=g-import-not-at-top
  from lightly.models.modules import SimCLRProjectionHead  # pylint: disable=g-import-not-at-top
  from lightly.transforms.simclr_transform import SimCLRViewTransform  # pylint: disable=g-import-not-at-top
  import tqdm  # pylint: disable=g-import-not-at-top

  from ssl_pairs.evals import knn as knn_lib  # pylint: disable=g-import-not-at-top
  from ssl_pairs.evals import linear_probe as probe_lib  # pylint: disable=g-import-not-at-top

  if _THREADS.value:
    torch.set_num_threads(_THREADS.value)
  os.makedirs(_WORKDIR.value, exist_ok=True)
  out = os.path.join(_WORKDIR.value, 'eval.json')
  if os.path.exists(out):
    print(f'{out} exists; nothing to do.')
    return
  torch.manual_seed(_SEED.value)
  data_dir = sources_lib.resolve_data_dir()
  # Our loader and pair-file reader: the same decoded images (PIL → RGB, stored
  # size) and the same rows as an ssl_pairs run on this file.
  source = sources_lib.load_split('tiny_imagenet', 'train', data_dir, None)
  pair_set = pairs_lib.read_pair_file(_PAIRS.value, source)
  pair_idx = np.stack([pair_set.anchors, pair_set.partners], 1)

  view = SimCLRViewTransform(input_size=_IMAGE_SIZE.value, cj_strength=0.5,
                             gaussian_blur=0.0)
  resnet = ResNetGenerator('resnet-18', width=_WIDTH.value)
  children = list(resnet.children())[:-1]
  if _STEM_RELU.value:
    children.insert(2, torch.nn.ReLU())  # After conv1, bn1.
  backbone = torch.nn.Sequential(*children, torch.nn.AdaptiveAvgPool2d(1))
  feat_dim = resnet.linear.in_features
  head = SimCLRProjectionHead(feat_dim, _PROJ_HIDDEN.value, 128)
  model = torch.nn.ModuleDict({'backbone': backbone, 'head': head})
  if _INIT.value == 'ssl_pairs':
    ssl_pairs_init(torch, model)
  criterion = NTXentLoss(temperature=_TEMPERATURE.value)
  lr = _LR.value * _BATCH.value / 128
  if _DECAY_ALL.value:
    groups = [{'params': list(model.parameters())}]
  else:  # Kernels only, as ssl_pairs.optim.decay_mask.
    kernels = [p for p in model.parameters() if p.ndim > 1]
    others = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{'params': kernels}, {'params': others, 'weight_decay': 0.0}]
  opt = torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=5e-4)
  steps = math.ceil(_EPOCHS.value * len(pair_idx) / _BATCH.value)
  sched = torch.optim.lr_scheduler.LambdaLR(
      opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) /
                                         max(steps, 1))))

  def ssl_pairs_views():
    """(view1, view2) float tensors from the ssl_pairs pipeline, step k = k."""
    import grain  # pylint: disable=g-import-not-at-top
    import ml_collections  # pylint: disable=g-import-not-at-top
    from ssl_pairs import train as train_lib  # pylint: disable=g-import-not-at-top
    from ssl_pairs.data import pipeline  # pylint: disable=g-import-not-at-top
    with open(_VIEWS_CONFIG.value) as f:
      config = ml_collections.ConfigDict(json.load(f))
    config.data.pair_file = os.path.abspath(_PAIRS.value)
    source, pair_set = train_lib.load_pretraining_data(config)
    batches = pipeline.train_batches(source, pair_set, config.data,
                                     _BATCH.value, _SEED.value)
    it = iter(batches.to_iter_dataset(grain.ReadOptions(
        num_threads=1, prefetch_buffer_size=4)))

    def tensor(x):
      x = (x.astype(np.float32) / 255.0 - _MEAN) / _STD
      return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()

    for _ in range(steps):
      b = next(it)
      yield tensor(b['view1']), tensor(b['view2'])

  class Pairs(torch.utils.data.Dataset):

    def __len__(self):
      return len(pair_idx)

    def __getitem__(self, i):
      return (view(Image.fromarray(source[pair_idx[i, 0]])),
              view(Image.fromarray(source[pair_idx[i, 1]])))

  # Reshuffled every pass (RandomSampler concatenates permutations); one
  # worker augments the next batches while the main process trains.
  generator = torch.Generator().manual_seed(_SEED.value)
  log = open(os.path.join(_WORKDIR.value, 'metrics.jsonl'), 'w')
  t0 = time.time()
  model.train()
  if not steps:  # --epochs=0: the randomly initialised network.
    loader = []
  elif _VIEWS.value == 'ssl_pairs':
    loader = ssl_pairs_views()
  else:
    loader = torch.utils.data.DataLoader(
        Pairs(), batch_size=_BATCH.value, drop_last=True, num_workers=1,
        generator=generator, sampler=torch.utils.data.RandomSampler(
            Pairs(), num_samples=steps * _BATCH.value, generator=generator),
        prefetch_factor=4, persistent_workers=False)
  bar = tqdm.tqdm(loader, total=steps, desc='peer (lightly)', mininterval=10)
  for step, (x0, x1) in enumerate(bar):
    if _ONE_PASS.value:
      z0, z1 = model['head'](model['backbone'](
          torch.cat([x0, x1])).flatten(1)).chunk(2)
    else:
      z0 = model['head'](model['backbone'](x0).flatten(1))
      z1 = model['head'](model['backbone'](x1).flatten(1))
    loss = criterion(z0, z1)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    bar.set_postfix(loss=f'{loss.item():.4f}')
    log.write(json.dumps({'step': step + 1, 'loss': loss.item()}) + '\n')
  log.close()
  train_seconds = time.time() - t0

  model.eval()

  @torch.no_grad()
  def features(source):
    out_f = []
    for s in range(0, len(source), 512):
      x = source.gather(np.arange(s, min(s + 512, len(source))))
      x = (x.astype(np.float32) / 255.0 - _MEAN) / _STD
      x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
      out_f.append(model['backbone'](x).flatten(1).numpy())
    return np.concatenate(out_f)

  results = {}
  for name in _EVAL.value:
    train = sources_lib.load_split(name, 'train', data_dir, _IMAGE_SIZE.value)
    test = sources_lib.load_split(name, 'test', data_dir, _IMAGE_SIZE.value)
    ftr, fte = features(train), features(test)
    num_classes = max(train.num_classes, test.num_classes)
    r = {f'knn@{k}': v for k, v in knn_lib.knn_accuracy(
        ftr, train.labels, fte, test.labels, num_classes, (20, 200),
        0.07).items()}
    probe = probe_lib.linear_probe(ftr, train.labels, fte, test.labels,
                                   num_classes, seed=0)
    r.update(probe=probe['top1'], probe_l2=probe['l2'])
    results[name] = r
    print(name, {k: round(v, 2) for k, v in r.items()}, flush=True)
  with open(out, 'w') as f:
    json.dump({'results': results, 'train_seconds': train_seconds,
               'steps': steps, 'seed': _SEED.value, 'pairs': _PAIRS.value,
               'proj_hidden_dim': _PROJ_HIDDEN.value, 'views': _VIEWS.value,
               'stem_relu': _STEM_RELU.value, 'one_pass': _ONE_PASS.value,
               'decay_all': _DECAY_ALL.value, 'init': _INIT.value,
               'flags': sys.argv[1:]}, f, indent=1)


if __name__ == '__main__':
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  flags.mark_flags_as_required(['pairs', 'workdir'])
  cli.run(main, clear=False)
