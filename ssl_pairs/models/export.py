"""Encoder variables in torchvision's (ResNet) and timm's (ViT) names.

:func:`state_dict` turns a restored backbone (``{'params', 'batch_stats'}``
of ``checkpoint.restore_encoder``) into an ordered ``{name: numpy array}``
that ``torch.nn.Module.load_state_dict`` reads after ``torch.from_numpy``
(``safetensors.torch.load_file`` does it): ResNet-18/34/50/101 as
``torchvision.models.resnet*`` names them, ViTs as
``timm.models.vision_transformer.VisionTransformer``. Encoder only: no
projection head and no classifier (``fc``/``head``). :func:`describe` is what
a loader needs besides the tensors (the JSON the exporter writes beside them);
``ssl_pairs.tools.export`` is the program, docs/export.md the guide.

Layouts: convolution kernels HWIO → OIHW; dense kernels (in, out) → (out, in);
BatchNorm scale/bias/mean/var → weight/bias/running_mean/running_var plus an
int64 ``num_batches_tracked`` of 0 (torch's BatchNorm has that buffer, so a
strict load finds it); attention query/key/value (in, heads, head_dim) → one
``qkv`` (3·heads·head_dim, in) in timm's q, k, v order.

Exactness: a ResNet trained with ``model.padding='torch'`` computes in torch
what it computes here (``tests/test_export.py``, ≤ 1e-4 in fp32); one with
'same' (the default; every checkpoint before the option) pads its stride-2
windows differently (``resnet.PADDINGS``), so torchvision's forward only
approximates it (docs/export.md measures how far) unless :func:`same_padding`
patches the torch network, which makes it exact too. A ViT uses the tanh
GELU (flax's default): timm's ``act_layer='gelu_tanh'`` computes it exactly.

:func:`torchvision_resnet` is a copy of torchvision's ResNet in plain torch
with a width and the CIFAR stem, for the exports torchvision's own classes
cannot hold (width ≠ 1) and for machines without torchvision; importing this
module does not import torch.
"""

import collections
from typing import Any, Dict, Mapping, Optional

import numpy as np

from ssl_pairs import images
from ssl_pairs.errors import UserError
from ssl_pairs.models import resnet as resnet_lib
from ssl_pairs.models import vit as vit_lib

FORMAT = 'ssl_pairs.export/1'
RESNETS = ('resnet18', 'resnet34', 'resnet50', 'resnet101')
VITS = tuple(sorted(vit_lib.VIT_SIZES))
# What an ImageNet-stem torchvision ResNet has that the export leaves out.
TORCHVISION_HEAD = ('fc.weight', 'fc.bias')


def exportable():
  """The ``model.arch`` values the exporter knows."""
  return RESNETS + VITS


def check_exportable(model_config: Mapping[str, Any]) -> str:
  """``model_config['arch']`` if the exporter knows it, else a UserError."""
  arch = model_config.get('arch')
  if arch not in exportable():
    raise UserError(
        f'The exporter writes {", ".join(exportable())} in torchvision/timm '
        f'names, not model.arch={arch!r}; export a checkpoint of one of '
        f'those, or add the names of {arch!r} to ssl_pairs/models/export.py.')
  return arch


def padding_of(model_config: Mapping[str, Any]) -> str:
  """``model.padding``, 'same' for checkpoints written before it existed."""
  return model_config.get('padding', 'same') or 'same'


class _Variables:
  """A backbone's flax variables, taken by path; says what was never taken."""

  def __init__(self, variables, arch: str):
    self.arch = arch
    self.left = {}
    for collection in ('params', 'batch_stats'):
      self._flatten(variables.get(collection, {}), (collection,))

  def _flatten(self, tree, path):
    if isinstance(tree, Mapping):
      for k, v in tree.items():
        self._flatten(v, path + (str(k),))
    else:
      self.left[path] = tree

  def take(self, *path) -> np.ndarray:
    try:
      value = self.left.pop(path)
    except KeyError:
      raise self._mismatch(f'it has no {"/".join(path)}') from None
    return np.asarray(value, np.float32)

  def has(self, *path) -> bool:
    return path in self.left

  def done(self) -> None:
    if self.left:
      raise self._mismatch(
          f'{len(self.left)} variables were not exported, e.g. '
          f'{"/".join(next(iter(self.left)))}')

  def _mismatch(self, what):
    return UserError(
        f'The checkpoint\'s backbone is not a flax {self.arch} as '
        f'ssl_pairs/models builds it ({what}); export it with the ssl_pairs '
        'version that trained it.')


def _oihw(kernel):
  """flax conv kernel [H, W, in, out] → torch [out, in, H, W]."""
  return np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1)))


def _batch_norm(out, name, v, *path):
  out[f'{name}.weight'] = v.take('params', *path, 'scale')
  out[f'{name}.bias'] = v.take('params', *path, 'bias')
  out[f'{name}.running_mean'] = v.take('batch_stats', *path, 'mean')
  out[f'{name}.running_var'] = v.take('batch_stats', *path, 'var')
  out[f'{name}.num_batches_tracked'] = np.array(0, np.int64)


def _resnet_state_dict(arch, v):
  stages, block = resnet_lib.RESNET_STAGES[arch]
  convs = 3 if block is resnet_lib.BottleneckBlock else 2
  out = collections.OrderedDict()
  out['conv1.weight'] = _oihw(v.take('params', 'conv_init', 'kernel'))
  _batch_norm(out, 'bn1', v, 'bn_init')
  k = 0
  for i, size in enumerate(stages):
    for j in range(size):
      flax_name, name = f'{block.__name__}_{k}', f'layer{i + 1}.{j}'
      for c in range(convs):
        out[f'{name}.conv{c + 1}.weight'] = _oihw(
            v.take('params', flax_name, f'Conv_{c}', 'kernel'))
        _batch_norm(out, f'{name}.bn{c + 1}', v, flax_name, f'BatchNorm_{c}')
      if v.has('params', flax_name, 'conv_proj', 'kernel'):
        out[f'{name}.downsample.0.weight'] = _oihw(
            v.take('params', flax_name, 'conv_proj', 'kernel'))
        _batch_norm(out, f'{name}.downsample.1', v, flax_name, 'norm_proj')
      k += 1
  return out


def _linear(out, name, v, *path):
  out[f'{name}.weight'] = np.ascontiguousarray(
      v.take('params', *path, 'kernel').T)
  out[f'{name}.bias'] = v.take('params', *path, 'bias')


def _layer_norm(out, name, v, *path):
  out[f'{name}.weight'] = v.take('params', *path, 'scale')
  out[f'{name}.bias'] = v.take('params', *path, 'bias')


def _vit_state_dict(arch, v):
  _, depth, _, _ = vit_lib.VIT_SIZES[arch]
  out = collections.OrderedDict()
  out['cls_token'] = v.take('params', 'cls')
  out['pos_embed'] = v.take('params', 'pos_embedding')
  out['patch_embed.proj.weight'] = _oihw(
      v.take('params', 'patch_embed', 'kernel'))
  out['patch_embed.proj.bias'] = v.take('params', 'patch_embed', 'bias')
  for i in range(depth):
    b, name = f'block{i}', f'blocks.{i}'
    attn = (b, 'MultiHeadDotProductAttention_0')
    _layer_norm(out, f'{name}.norm1', v, b, 'LayerNorm_0')
    q, k, val = (v.take('params', *attn, p, 'kernel') for p in
                 ('query', 'key', 'value'))  # [in, heads, head_dim]
    out[f'{name}.attn.qkv.weight'] = np.ascontiguousarray(np.concatenate(
        [x.reshape(x.shape[0], -1).T for x in (q, k, val)]))
    out[f'{name}.attn.qkv.bias'] = np.concatenate(
        [v.take('params', *attn, p, 'bias').reshape(-1)
         for p in ('query', 'key', 'value')])
    o = v.take('params', *attn, 'out', 'kernel')  # [heads, head_dim, out]
    out[f'{name}.attn.proj.weight'] = np.ascontiguousarray(
        o.reshape(-1, o.shape[-1]).T)
    out[f'{name}.attn.proj.bias'] = v.take('params', *attn, 'out', 'bias')
    _layer_norm(out, f'{name}.norm2', v, b, 'LayerNorm_1')
    _linear(out, f'{name}.mlp.fc1', v, b, 'Dense_0')
    _linear(out, f'{name}.mlp.fc2', v, b, 'Dense_1')
  _layer_norm(out, 'norm', v, 'norm')
  return out


def state_dict(model_config: Mapping[str, Any],
               variables: Mapping[str, Any]) -> Dict[str, np.ndarray]:
  """The backbone's variables in torchvision (ResNet) / timm (ViT) names.

  Args:
    model_config: the run's ``config.model`` (a dict or ConfigDict).
    variables: ``{'params': ..., 'batch_stats': ...}`` of the backbone.

  Returns:
    An ordered {name: C-contiguous numpy array}: float32, and int64 scalars
    for ``num_batches_tracked``.

  Raises:
    UserError: an architecture the exporter does not know, or variables that
      are not that architecture's.
  """
  arch = check_exportable(model_config)
  v = _Variables(variables, arch)
  out = (_resnet_state_dict(arch, v) if arch in RESNETS else
         _vit_state_dict(arch, v))
  v.done()
  return out


def describe(model_config: Mapping[str, Any],
             tensors: Mapping[str, np.ndarray],
             image_size: Optional[int] = None) -> Dict[str, Any]:
  """What a torch loader needs besides the tensors (no run bookkeeping).

  Args:
    model_config: the run's ``config.model``.
    tensors: :func:`state_dict`'s output.
    image_size: the pretraining resolution (``data.image_size``).
  """
  arch = check_exportable(model_config)
  d = {
      'format': FORMAT,
      'architecture': arch,
      'image_size': image_size,
      'input': {
          'layout': 'NCHW float32, RGB',
          'scale': 'pixel / 255, then (x - mean) / std',
          'mean': [round(float(x), 6) for x in images.MEAN],
          'std': [round(float(x), 6) for x in images.STD],
      },
      'feature_dim': None,
      'tensors': len(tensors),
      'parameters': int(sum(x.size for k, x in tensors.items()
                            if not k.endswith(('running_mean', 'running_var',
                                               'num_batches_tracked')))),
  }
  if arch in RESNETS:
    width = int(tensors['conv1.weight'].shape[0])
    expansion = 4 if 'layer1.0.conv3.weight' in tensors else 1
    padding = padding_of(model_config)
    d.update(
        framework='torchvision', torchvision_model=arch,
        stem=model_config.get('stem', 'cifar'), padding=padding,
        torch_exact=padding == 'torch',
        width_multiplier=float(model_config.get('width_multiplier', 1.0)),
        base_width=width, feature_dim=width * 8 * expansion,
        encoder_only=('no projection head and no fc: features are the '
                      'global-average-pooled layer4 output (torchvision with '
                      'fc = Identity)'),
        batch_norm='running statistics included (eval mode uses them); '
                   'num_batches_tracked is 0')
    notes = []
    if width != 64:
      notes.append(f'width {width} ≠ 64: torchvision.models.{arch} holds '
                   'width 1 only; build ssl_pairs.models.export.'
                   'torchvision_resnet (same names) instead')
    if d['stem'] == 'cifar':
      notes.append('CIFAR stem: set conv1 = Conv2d(3, base_width, 3, 1, 1, '
                   'bias=False) and maxpool = Identity before loading')
    if padding != 'torch':
      notes.append("padding 'same': torchvision pads the stride-2 3×3 "
                   'convolutions (and the max-pool) symmetrically, so its '
                   'features approximate, not equal, the trained encoder; '
                   'ssl_pairs.models.export.same_padding(net) (docs/'
                   'export.md) makes them equal')
    d['notes'] = notes
  else:
    width, depth, heads, mlp = vit_lib.VIT_SIZES[arch]
    patch = int(tensors['patch_embed.proj.weight'].shape[-1])
    grid = int(round((tensors['pos_embed'].shape[1] - 1) ** 0.5))
    d.update(
        framework='timm', patch_size=patch, feature_dim=width,
        image_size=image_size or grid * patch, torch_exact=True,
        timm_kwargs=dict(img_size=grid * patch, patch_size=patch,
                         embed_dim=width, depth=depth, num_heads=heads,
                         mlp_ratio=mlp / width, qkv_bias=True,
                         class_token=True, global_pool='token',
                         num_classes=0, act_layer='gelu_tanh'),
        encoder_only=('no projection head and no classifier: features are '
                      'the class token after the final LayerNorm (timm '
                      'num_classes=0, global_pool="token")'),
        notes=['GELU is the tanh approximation (flax nn.gelu): timm '
               "act_layer='gelu_tanh'; timm's default exact GELU differs "
               'slightly', f'pos_embed is for a {grid}×{grid} grid '
               f'({grid * patch} px)'])
  return d


def same_padding(net):
  """Makes a torchvision-style ResNet pad as ``model.padding='same'`` does.

  flax's 'SAME' (TensorFlow's rule) pads a window of size k and stride s over
  n pixels by max((⌈n/s⌉ − 1)·s + k − n, 0) in all, the smaller half first:
  (0, 1) for a 3×3 stride-2 window over an even size, where torch pads
  (1, 1). This sets ``padding=0`` on the strided 3×3 convolutions and the
  max-pool of ``net`` (torchvision's own ``resnet*`` or
  :func:`torchvision_resnet`) and pads their inputs by that rule in a forward
  pre-hook (zeros; -inf for the max-pool), in place: names, parameters and
  ``state_dict`` stay torchvision's, and a 'same' export then computes the
  trained encoder's features. Returns ``net``.
  """
  from torch import nn  # pylint: disable=g-import-not-at-top
  from torch.nn import functional as F  # pylint: disable=g-import-not-at-top

  def pads(n, k, s):
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2

  def pad_input(module, args):
    x = args[0]
    k, s = module.kernel_size, module.stride
    k = k if isinstance(k, tuple) else (k, k)
    s = s if isinstance(s, tuple) else (s, s)
    (top, bottom), (left, right) = (pads(x.shape[-2], k[0], s[0]),
                                    pads(x.shape[-1], k[1], s[1]))
    value = float('-inf') if isinstance(module, nn.MaxPool2d) else 0.0
    return (F.pad(x, (left, right, top, bottom), value=value),) + args[1:]

  for m in net.modules():
    strided_3x3 = (isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and
                   m.stride != (1, 1))
    if strided_3x3 or isinstance(m, nn.MaxPool2d):
      m.padding = (0, 0) if strided_3x3 else 0
      m.register_forward_pre_hook(pad_input)
  return net


def torchvision_resnet(arch: str, width_multiplier: float = 1.0,
                       stem: str = 'imagenet', num_classes: int = 1000):
  """torchvision's ResNet (v1.5) in plain torch: the same module names,
  parameters, buffers and forward as ``torchvision.models.<arch>()``, plus a
  width multiplier and the CIFAR stem (3×3 stride-1 ``conv1``, no max-pool).

  ``num_classes=0`` replaces ``fc`` by Identity (the exported encoder).
  """
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  if arch not in RESNETS:
    raise ValueError(f'torchvision_resnet builds {RESNETS}, not {arch!r}.')
  stages, flax_block = resnet_lib.RESNET_STAGES[arch]
  bottleneck = flax_block is resnet_lib.BottleneckBlock
  expansion = 4 if bottleneck else 1
  base = max(1, int(round(64 * width_multiplier)))

  class BasicBlock(nn.Module):

    def __init__(self, inplanes, planes, stride, downsample):
      super().__init__()
      self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
      self.bn1 = nn.BatchNorm2d(planes)
      self.relu = nn.ReLU(inplace=True)
      self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
      self.bn2 = nn.BatchNorm2d(planes)
      self.downsample = downsample

    def forward(self, x):
      identity = x if self.downsample is None else self.downsample(x)
      out = self.relu(self.bn1(self.conv1(x)))
      return self.relu(self.bn2(self.conv2(out)) + identity)

  class Bottleneck(nn.Module):

    def __init__(self, inplanes, planes, stride, downsample):
      super().__init__()
      self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
      self.bn1 = nn.BatchNorm2d(planes)
      self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
      self.bn2 = nn.BatchNorm2d(planes)
      self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
      self.bn3 = nn.BatchNorm2d(planes * 4)
      self.relu = nn.ReLU(inplace=True)
      self.downsample = downsample

    def forward(self, x):
      identity = x if self.downsample is None else self.downsample(x)
      out = self.relu(self.bn1(self.conv1(x)))
      out = self.relu(self.bn2(self.conv2(out)))
      return self.relu(self.bn3(self.conv3(out)) + identity)

  block_cls = Bottleneck if bottleneck else BasicBlock

  class ResNet(nn.Module):

    def __init__(self):
      super().__init__()
      if stem == 'imagenet':
        self.conv1 = nn.Conv2d(3, base, 7, 2, 3, bias=False)
      elif stem == 'cifar':
        self.conv1 = nn.Conv2d(3, base, 3, 1, 1, bias=False)
      else:
        raise ValueError(f"Unknown stem {stem!r}; use 'cifar' or 'imagenet'.")
      self.bn1 = nn.BatchNorm2d(base)
      self.relu = nn.ReLU(inplace=True)
      self.maxpool = (nn.MaxPool2d(3, 2, 1) if stem == 'imagenet' else
                      nn.Identity())
      inplanes = base
      for i, size in enumerate(stages):
        planes, stride = base * 2**i, 1 if i == 0 else 2
        blocks = []
        for j in range(size):
          s = stride if j == 0 else 1
          downsample = None
          if s != 1 or inplanes != planes * expansion:
            downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * expansion, 1, s, bias=False),
                nn.BatchNorm2d(planes * expansion))
          blocks.append(block_cls(inplanes, planes, s, downsample))
          inplanes = planes * expansion
        setattr(self, f'layer{i + 1}', nn.Sequential(*blocks))
      self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
      self.fc = (nn.Linear(inplanes, num_classes) if num_classes else
                 nn.Identity())

    def forward(self, x):
      x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
      x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
      return self.fc(torch.flatten(self.avgpool(x), 1))

  return ResNet()
