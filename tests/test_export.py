"""ssl_pairs.tools.export: the encoder in torchvision's / timm's names.

Without torch: the exported names, shapes and dtypes of a width-1 ResNet-18
and ResNet-50 are torchvision's ``state_dict()`` (the committed lists in
tests/data, minus ``fc``), and an architecture the exporter does not know is
refused in one sentence. With torch (skipped without): a ResNet with
``model.padding='torch'`` loaded into torchvision's ResNet (the torch copy in
``ssl_pairs.models.export``, ``launch/torch_reference.py``'s SimCLR twin, and
``torchvision.models`` where it imports) computes our features to ≤ 1e-4 in
fp32, both stems; a 'same' one does not (which the exporter warns about)
until ``export.same_padding`` patches the torch network; a ViT loaded into
timm's forward does too; and the program exports a workdir.

``python tests/test_export.py`` rewrites the committed lists (see their
header).
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, REPO)
from launch import torch_reference  # pylint: disable=wrong-import-position
from ssl_pairs.errors import UserError  # pylint: disable=wrong-import-position
from ssl_pairs.models import export as export_lib  # pylint: disable=wrong-import-position
from ssl_pairs.models import resnet as resnet_lib  # pylint: disable=wrong-import-position
from ssl_pairs.models import vit as vit_lib  # pylint: disable=wrong-import-position
from ssl_pairs.tools import export as export_tool  # pylint: disable=wrong-import-position

DATA = os.path.join(REPO, 'tests', 'data')
COUNTS = {'resnet18': 122, 'resnet50': 320}  # Entries of torchvision's lists.


def list_path(arch):
  return os.path.join(DATA, f'torchvision_{arch}_state_dict.tsv')


def read_list(arch):
  """[(name, shape, dtype)] of the committed torchvision list."""
  rows = []
  with open(list_path(arch)) as f:
    for line in f:
      if line.startswith('#') or not line.strip():
        continue
      name, shape, dtype = line.rstrip('\n').split('\t')
      rows.append((name, tuple(json.loads(shape)), dtype))
  return rows


def rows_of(tensors):
  """[(name, shape, dtype)] of a {name: array or torch tensor}."""
  return [(k, tuple(int(d) for d in v.shape),
           str(v.dtype).replace('torch.', '')) for k, v in tensors.items()]


def write_lists():
  """Writes tests/data/torchvision_{resnet18,resnet50}_state_dict.tsv."""
  try:
    import torchvision  # pylint: disable=g-import-not-at-top
    source = f'torchvision {torchvision.__version__}: torchvision.models.'
    build = lambda arch: getattr(torchvision.models, arch)(weights=None)
  except ImportError:
    source = ('ssl_pairs.models.export.torchvision_resnet(arch, 1.0, '
              "'imagenet', 1000), the torch copy of torchvision's ResNet "
              '(torchvision was not installed): ')
    build = lambda arch: export_lib.torchvision_resnet(arch, 1.0, 'imagenet')
  for arch in COUNTS:
    sd = build(arch).state_dict()
    params = sum(v.numel() for k, v in sd.items() if not k.endswith(
        ('running_mean', 'running_var', 'num_batches_tracked')))
    with open(list_path(arch), 'w') as f:
      f.write(
          f"# torchvision.models.{arch}(weights=None).state_dict(): name, "
          'shape, dtype, one entry a line in state_dict order (tab-separated)'
          f'.\n# {len(sd)} entries (with num_batches_tracked), {params:,} '
          'parameters.\n'
          f'# Written by `python tests/test_export.py` from {source}'
          f'{arch}.\n# Cross-checked by hand: the parameter counts are '
          "torchvision's documented ones (resnet18 11,689,512, resnet50 "
          '25,557,032), and the names, order and shapes agree with published '
          "state_dict() dumps of torchvision's resnet18 and resnet50.\n")
      for name, shape, dtype in rows_of(sd):
        f.write(f'{name}\t{json.dumps(list(shape))}\t{dtype}\n')


def randomised_resnet(arch, width, stem, padding, size, seed=0, batch=4):
  """(model, variables, NHWC images) with random kernels and BatchNorm
  parameters, and running statistics near the images' batch statistics (so
  the features stay O(1) and every statistic matters)."""
  model = resnet_lib.resnet(arch, width, stem, padding=padding)
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, size, size, 3)), train=False))
  rng = np.random.default_rng(seed)

  def draw(path, s):
    name = path[-1].key
    if name == 'kernel':
      return rng.normal(0, (2 / np.prod(s.shape[:-1])) ** 0.5,
                        s.shape).astype(np.float32)
    if name == 'scale':
      return rng.uniform(0.5, 1.5, s.shape).astype(np.float32)
    if name == 'bias':
      return rng.normal(0, 0.2, s.shape).astype(np.float32)
    return np.zeros(s.shape, np.float32) if name == 'mean' else np.ones(
        s.shape, np.float32)

  variables = jax.tree_util.tree_map_with_path(draw, shapes)
  images = rng.normal(size=(batch, size, size, 3)).astype(np.float32)
  _, updated = jax.jit(lambda v, x: model.apply(
      v, x, train=True, mutable=['batch_stats']))(variables, images)
  # The train-mode update is 0.9 · old + 0.1 · batch: recover the batch's.
  batch_stats = jax.tree.map(lambda new, old: (new - 0.9 * old) / 0.1,
                             updated['batch_stats'], variables['batch_stats'])

  def perturb(path, x):
    x = np.asarray(x)
    if path[-1].key == 'mean':
      return (x + rng.normal(0, 0.3, x.shape)).astype(np.float32)
    return (np.maximum(x, 1e-3) * rng.uniform(0.7, 1.4, x.shape)).astype(
        np.float32)

  variables = {'params': variables['params'],
               'batch_stats': jax.tree_util.tree_map_with_path(perturb,
                                                               batch_stats)}
  return model, variables, images


def ours(model, variables, images):
  return np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(
      variables, images))


def torch_features(net, images):
  import torch  # pylint: disable=g-import-not-at-top
  net.eval()
  with torch.no_grad():
    return net(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()


def as_torch(tensors):
  import torch  # pylint: disable=g-import-not-at-top
  return {k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}


def model_config(arch, width=1.0, stem='imagenet', padding='torch'):
  return {'arch': arch, 'width_multiplier': width, 'stem': stem,
          'padding': padding}


@pytest.mark.parametrize('arch', sorted(COUNTS))
def test_names_shapes_and_dtypes_are_torchvisions(arch):
  expected = read_list(arch)
  assert len(expected) == COUNTS[arch]
  assert [r[0] for r in expected[-2:]] == list(export_lib.TORCHVISION_HEAD)
  model = resnet_lib.resnet(arch, 1.0, 'imagenet')
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False))
  zeros = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
  tensors = export_lib.state_dict(model_config(arch), zeros)
  assert rows_of(tensors) == expected[:-2]  # All but fc, in torch's order.
  meta = export_lib.describe(model_config(arch), tensors, 224)
  assert meta['feature_dim'] == expected[-2][1][1]  # fc's input size.
  assert meta['parameters'] == sum(
      int(np.prod(s.shape)) for s in jax.tree.leaves(shapes['params']))


def test_layouts_are_torchs():
  model = resnet_lib.resnet('resnet50', 0.125, 'imagenet')
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False))
  rng = np.random.default_rng(0)
  v = jax.tree.map(lambda s: rng.normal(size=s.shape).astype(np.float32),
                   shapes)
  t = export_lib.state_dict(model_config('resnet50', 0.125), v)
  p, b = v['params'], v['batch_stats']
  np.testing.assert_array_equal(  # HWIO → OIHW.
      t['conv1.weight'], p['conv_init']['kernel'].transpose(3, 2, 0, 1))
  np.testing.assert_array_equal(
      t['layer2.0.conv2.weight'][5, 3],
      p['BottleneckBlock_3']['Conv_1']['kernel'][:, :, 3, 5])
  np.testing.assert_array_equal(
      t['layer4.0.downsample.0.weight'][:, :, 0, 0],
      p['BottleneckBlock_13']['conv_proj']['kernel'][0, 0].T)
  for torch_name, flax_name in (('weight', 'scale'), ('bias', 'bias')):
    np.testing.assert_array_equal(t[f'layer3.5.bn3.{torch_name}'],
                                  p['BottleneckBlock_12']['BatchNorm_2'][
                                      flax_name])
  for torch_name, flax_name in (('running_mean', 'mean'),
                                ('running_var', 'var')):
    np.testing.assert_array_equal(t[f'layer1.0.downsample.1.{torch_name}'],
                                  b['BottleneckBlock_0']['norm_proj'][
                                      flax_name])
  assert t['bn1.num_batches_tracked'].dtype == np.int64
  assert t['bn1.num_batches_tracked'].shape == ()
  assert all(x.flags['C_CONTIGUOUS'] for x in t.values())


def test_an_architecture_the_exporter_does_not_know_is_refused_in_a_sentence():
  for arch in ('resnet_tiny', 'convnext_tiny'):
    with pytest.raises(UserError) as e:
      export_lib.state_dict({'arch': arch}, {'params': {}})
    message = str(e.value)
    assert f"model.arch={arch!r}" in message and 'resnet50' in message
    assert '\n' not in message and message.endswith('.')
    assert '. ' not in message.replace('e.g. ', '')  # One sentence.


def test_variables_of_another_network_are_refused():
  _, variables, _ = randomised_resnet('resnet18', 0.125, 'cifar', 'torch', 16)
  with pytest.raises(UserError, match='not a flax resnet34'):
    export_lib.state_dict(model_config('resnet34'), variables)
  extra = {'params': dict(variables['params'], extra={'kernel': np.ones(1)}),
           'batch_stats': variables['batch_stats']}
  with pytest.raises(UserError, match='1 variables were not exported'):
    export_lib.state_dict(model_config('resnet18'), extra)


def test_same_and_torch_padding_share_parameters_and_same_is_the_default():
  x = jnp.zeros((1, 32, 32, 3))
  same = resnet_lib.resnet('resnet18', 0.125, 'imagenet')
  torch_pad = resnet_lib.resnet('resnet18', 0.125, 'imagenet', padding='torch')
  assert same.padding == 'same'
  a = jax.eval_shape(lambda: same.init(jax.random.key(0), x))
  b = jax.eval_shape(lambda: torch_pad.init(jax.random.key(0), x))
  assert jax.tree.structure(a) == jax.tree.structure(b)
  assert export_lib.padding_of({'arch': 'resnet18'}) == 'same'
  with pytest.raises(ValueError, match='Unknown padding'):
    resnet_lib.resnet('resnet18', 0.125, padding='valid').init(
        jax.random.key(0), x)


@pytest.mark.parametrize('arch,width,stem,size', [
    ('resnet18', 0.25, 'cifar', 32), ('resnet18', 0.25, 'imagenet', 64),
    ('resnet50', 0.125, 'cifar', 32)])
def test_torchvision_resnet_computes_our_features(arch, width, stem, size):
  torch = pytest.importorskip('torch')
  model, variables, images = randomised_resnet(arch, width, stem, 'torch',
                                               size)
  expected = ours(model, variables, images)
  tensors = export_lib.state_dict(model_config(arch, width, stem), variables)
  net = export_lib.torchvision_resnet(arch, width, stem, num_classes=0)
  net.load_state_dict(as_torch(tensors), strict=True)
  got = torch_features(net, images)
  assert 0.3 < np.abs(expected).max() < 50  # Features that mean something.
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
  if stem == 'cifar':  # launch/torch_reference.py's twin: same order.
    twin = torch_reference.build(arch, width, 8, 8)[0]
    sd = twin.state_dict()
    assert [tuple(v.shape) for v in sd.values()] == [
        tuple(v.shape) for v in tensors.values()]
    twin.load_state_dict(dict(zip(sd, as_torch(tensors).values())))
    np.testing.assert_allclose(torch_features(twin, images), expected,
                               rtol=0, atol=1e-4)
  del torch


def test_same_padding_needs_the_same_padding_patch():
  pytest.importorskip('torch')
  stem = 'imagenet'  # Strided convolutions and the max-pool.
  model, variables, images = randomised_resnet('resnet18', 0.25, stem,
                                               'same', 64)
  expected = ours(model, variables, images)
  tensors = as_torch(export_lib.state_dict(
      model_config('resnet18', 0.25, stem, padding='same'), variables))
  net = export_lib.torchvision_resnet('resnet18', 0.25, stem, 0)
  net.load_state_dict(tensors)
  assert np.abs(torch_features(net, images) - expected).max() > 1e-2
  patched = export_lib.same_padding(net)
  assert patched is net and list(net.state_dict()) == list(tensors)
  np.testing.assert_allclose(torch_features(net, images), expected, rtol=0,
                             atol=1e-4)
  odd = images[:, 1:, 1:]  # SAME pads (1, 1) there, as torch does.
  np.testing.assert_allclose(torch_features(net, odd),
                             ours(model, variables, odd), rtol=0, atol=1e-4)


@pytest.mark.parametrize('arch', sorted(COUNTS))
def test_the_torch_copy_is_torchvisions_list(arch):
  pytest.importorskip('torch')
  net = export_lib.torchvision_resnet(arch, 1.0, 'imagenet', 1000)
  assert rows_of(net.state_dict()) == read_list(arch)


def test_torchvision_loads_the_export_and_computes_our_features():
  pytest.importorskip('torch')
  torchvision = pytest.importorskip('torchvision')
  import torch  # pylint: disable=g-import-not-at-top
  model, variables, images = randomised_resnet('resnet18', 1.0, 'imagenet',
                                               'torch', 32, batch=2)
  net = torchvision.models.resnet18(weights=None)
  missing, unexpected = net.load_state_dict(
      as_torch(export_lib.state_dict(model_config('resnet18'), variables)),
      strict=False)
  assert sorted(missing) == sorted(export_lib.TORCHVISION_HEAD)
  assert not unexpected
  net.fc = torch.nn.Identity()
  np.testing.assert_allclose(torch_features(net, images),
                             ours(model, variables, images), rtol=0,
                             atol=1e-4)


def timm_vit_features(tensors, meta, images):
  """timm VisionTransformer's forward (num_classes=0, class token), written
  out with torch.nn.functional on the exported names."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch.nn import functional as F  # pylint: disable=g-import-not-at-top
  t = as_torch(tensors)
  kw = meta['timm_kwargs']
  heads, p = kw['num_heads'], kw['patch_size']
  x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
  with torch.no_grad():
    x = F.conv2d(x, t['patch_embed.proj.weight'], t['patch_embed.proj.bias'],
                 stride=p).flatten(2).transpose(1, 2)
    b, _, c = x.shape
    x = torch.cat([t['cls_token'].expand(b, -1, -1), x], 1) + t['pos_embed']
    ln = lambda y, n: F.layer_norm(y, (c,), t[f'{n}.weight'], t[f'{n}.bias'],
                                   eps=1e-6)
    for i in range(kw['depth']):
      n = f'blocks.{i}'
      y = ln(x, f'{n}.norm1')
      qkv = F.linear(y, t[f'{n}.attn.qkv.weight'], t[f'{n}.attn.qkv.bias'])
      q, k, v = qkv.reshape(b, -1, 3, heads, c // heads).permute(2, 0, 3, 1,
                                                                 4)
      a = (q @ k.transpose(-2, -1) * (c // heads) ** -0.5).softmax(-1)
      y = (a @ v).transpose(1, 2).reshape(b, -1, c)
      x = x + F.linear(y, t[f'{n}.attn.proj.weight'],
                       t[f'{n}.attn.proj.bias'])
      y = F.linear(ln(x, f'{n}.norm2'), t[f'{n}.mlp.fc1.weight'],
                   t[f'{n}.mlp.fc1.bias'])
      y = F.gelu(y, approximate='tanh')
      x = x + F.linear(y, t[f'{n}.mlp.fc2.weight'], t[f'{n}.mlp.fc2.bias'])
    return ln(x, 'norm')[:, 0].numpy()


def test_vit_in_timms_names_computes_our_features():
  pytest.importorskip('torch')
  model = vit_lib.vit('vit_test', 4)
  rng = np.random.default_rng(0)
  images = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
  variables = model.init(jax.random.key(0), images[:1])
  variables = jax.tree.map(  # No zero biases, class token or LayerNorms.
      lambda x: np.asarray(x) + rng.normal(0, 0.1, x.shape).astype(np.float32),
      variables)
  tensors = export_lib.state_dict({'arch': 'vit_test'}, variables)
  meta = export_lib.describe({'arch': 'vit_test'}, tensors, 16)
  assert meta['timm_kwargs']['img_size'] == 16 and meta['feature_dim'] == 32
  assert tensors['blocks.1.attn.qkv.weight'].shape == (96, 32)
  expected = np.asarray(model.apply(variables, images))
  np.testing.assert_allclose(timm_vit_features(tensors, meta, images),
                             expected, rtol=0, atol=1e-4)
  try:
    import timm  # pylint: disable=g-import-not-at-top
  except ImportError:
    return
  net = timm.models.vision_transformer.VisionTransformer(**meta['timm_kwargs'])
  net.load_state_dict(as_torch(tensors), strict=True)
  np.testing.assert_allclose(torch_features(net, images), expected, rtol=0,
                             atol=1e-4)


def write_checkpoint(workdir, arch, width, stem, padding, step=5):
  """A workdir with one checkpoint of a randomised backbone (and a head)."""
  from conftest import load_config  # pylint: disable=g-import-not-at-top
  from ssl_pairs import checkpoint  # pylint: disable=g-import-not-at-top
  from ssl_pairs.state import TrainState  # pylint: disable=g-import-not-at-top
  model, variables, images = randomised_resnet(arch, width, stem,
                                               padding or 'same', 32)
  config = load_config('simclr_sp').to_dict()
  config['model'].update(arch=arch, width_multiplier=width, stem=stem)
  config['data']['image_size'] = 32
  if padding is not None:
    config['model']['padding'] = padding
  else:  # A checkpoint written before model.padding existed.
    config['model'].pop('padding', None)
  state = TrainState(
      step=jnp.int32(step),
      params={'backbone': variables['params'],
              'projector': {'kernel': np.ones((4, 2), np.float32)}},
      batch_stats={'backbone': variables['batch_stats']}, opt_state={},
      method_state={})
  ckpts = checkpoint.Checkpoints(str(workdir))
  ckpts.save(step, state, {'train_seconds': 1.0}, config)
  ckpts.close()
  return model, variables, images, config


def test_the_program_exports_a_workdir(tmp_path):
  from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'run'
  model, variables, images, config = write_checkpoint(
      workdir, 'resnet18', 0.25, 'cifar', 'torch')
  out = tmp_path / 'exports' / 'enc.safetensors'
  proc = subprocess.run(
      [sys.executable, '-m', 'ssl_pairs.tools.export', f'--restore={workdir}',
       f'--out={out}'], cwd=REPO, capture_output=True, text=True,
      env=dict(os.environ, PYTHONPATH=REPO), timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Wrote' in proc.stdout and 'WARNING' not in proc.stderr
  tensors = load_file(str(out))
  assert sorted(rows_of(tensors)) == sorted(rows_of(export_lib.state_dict(
      config['model'], variables)))  # safetensors keeps no order.
  with open(tmp_path / 'exports' / 'enc.json') as f:
    meta = json.load(f)
  assert meta['architecture'] == 'resnet18' and meta['stem'] == 'cifar'
  assert meta['width_multiplier'] == 0.25 and meta['base_width'] == 16
  assert meta['padding'] == 'torch' and meta['torch_exact']
  assert meta['image_size'] == 32 and meta['step'] == 5
  assert meta['input']['mean'] == pytest.approx([0.485, 0.456, 0.406])
  assert meta['config'] == json.loads(json.dumps(config))
  assert meta['feature_dim'] == 128
  from safetensors import safe_open  # pylint: disable=g-import-not-at-top
  with safe_open(str(out), 'np') as f:
    assert json.loads(f.metadata()['ssl_pairs']) == meta
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return
  net = export_lib.torchvision_resnet('resnet18', 0.25, 'cifar', 0)
  net.load_state_dict(as_torch(tensors), strict=True)
  np.testing.assert_allclose(torch_features(net, images),
                             ours(model, variables, images), rtol=0,
                             atol=1e-4)


def test_an_old_same_padding_checkpoint_exports_with_a_warning(tmp_path):
  write_checkpoint(tmp_path / 'run', 'resnet18', 0.125, 'imagenet', None)
  warnings = []
  meta = export_tool.export(str(tmp_path / 'run'),
                            str(tmp_path / 'e.safetensors'),
                            warn=warnings.append)
  assert meta['padding'] == 'same' and not meta['torch_exact']
  assert 'padding' not in meta['config']['model']  # An old checkpoint.
  assert len(warnings) == 1 and 'same_padding' in warnings[0]
  assert any('approximate' in n for n in meta['notes'])
  with pytest.raises(UserError, match='must end in .safetensors'):
    export_tool.export(str(tmp_path / 'run'), str(tmp_path / 'e.pt'))


def test_a_checkpoint_of_an_unknown_architecture_is_refused(tmp_path):
  from conftest import load_config  # pylint: disable=g-import-not-at-top
  from ssl_pairs import checkpoint  # pylint: disable=g-import-not-at-top
  from ssl_pairs.state import TrainState  # pylint: disable=g-import-not-at-top
  model = resnet_lib.resnet('resnet_tiny')
  variables = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
  config = load_config('simclr_sp').to_dict()
  config['model']['arch'] = 'resnet_tiny'
  ckpts = checkpoint.Checkpoints(str(tmp_path / 'run'))
  ckpts.save(1, TrainState(
      step=jnp.int32(1), params={'backbone': variables['params']},
      batch_stats={'backbone': variables['batch_stats']}, opt_state={},
      method_state={}), {}, config)
  ckpts.close()
  with pytest.raises(UserError, match="model.arch='resnet_tiny'"):
    export_tool.export(str(tmp_path / 'run'), str(tmp_path / 'e.safetensors'))
  assert not os.path.exists(tmp_path / 'e.safetensors')


if __name__ == '__main__':
  write_lists()


def test_model_padding_reaches_the_backbone_from_the_config():
  """``model.padding`` selects the ResNet's padding (what export needs for an
  exact torchvision copy); a wrong value or a ViT with it is one sentence."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from configs import simclr_sp  # pylint: disable=g-import-not-at-top
  from ssl_pairs.errors import UserError as Error  # pylint: disable=g-import-not-at-top
  from ssl_pairs.models import get_backbone  # pylint: disable=g-import-not-at-top
  model = simclr_sp.get_config('runlocal').model
  assert model.padding == 'same' and get_backbone(model)[0].padding == 'same'
  model.padding = 'torch'
  assert get_backbone(model)[0].padding == 'torch'
  model.padding = 'reflect'
  with pytest.raises(Error, match='model.padding'):
    get_backbone(model)
  vit = ml_collections.ConfigDict(dict(model.to_dict(), arch='vit_small',
                                       padding='torch'))
  with pytest.raises(Error, match='ResNets only'):
    get_backbone(vit)
