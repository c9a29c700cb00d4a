"""Shared config pieces: argument parsing and the base pretraining config.

A config file's ``get_config(arg)`` receives the text after ``:`` in
``--config=configs/simclr_sp.py:runlocal,arch=resnet18``; :func:`parse_arg`
turns it into typed switches. Every field can then be overridden with
``--config.a.b=value``; the config is locked, so a misspelt key is an error.
"""

import ml_collections

SWITCHES = dict(smoke=False, runlocal=False, arch='', size=0, seed=0)


def parse_arg(arg, **spec):
  """Parses 'flag,key=value' into a ConfigDict typed like ``spec``.

  Args:
    arg: the text after ':' (or None).
    **spec: allowed switches with their defaults (the default's type is the
      switch's type; a bare name sets a bool switch to True).

  Returns:
    ConfigDict with every switch of ``spec``.

  Raises:
    ValueError: for a switch not in ``spec``.
  """
  result = ml_collections.ConfigDict(dict(spec))
  for token in (arg or '').split(','):
    token = token.strip()
    if not token:
      continue
    key, sep, value = token.partition('=')
    if key not in spec:
      raise ValueError(f'Unknown config switch {key!r}; valid: '
                       f'{", ".join(sorted(spec))}.')
    default = spec[key]
    if not sep:
      result[key] = True
    elif isinstance(default, bool):
      result[key] = value.lower() in ('1', 'true', 'yes')
    else:
      result[key] = type(default)(value)
  return result


def run_name(base: str, arg) -> str:
  """'simclr_sp' + 'runlocal,arch=x' → 'simclr_sp-runlocal-arch=x'."""
  parts = [t.strip() for t in (arg or '').split(',') if t.strip()]
  return '-'.join([base] + parts)


def data_config(pairs: str) -> ml_collections.ConfigDict:
  """Pretraining data: Tiny-ImageNet at 64 px, as the paper (ImageNet-derived)."""
  return ml_collections.ConfigDict(dict(
      dataset='tiny_imagenet',  # or cifar10, an npz file, an image folder...
      split='train',
      data_dir='',              # '' → $SSL_PAIRS_DATA_DIR → TFDS default dir.
      image_size=64,
      # Resolution the images are held at, the views being cut from them and
      # resized to image_size: 0 = image_size (resize first), -1 = as stored
      # (e.g. 32-px views cropped from 64-px Tiny-ImageNet, as torchvision's
      # RandomResizedCrop on the original files does).
      load_size=0,
      pairs=pairs,  # semantic | augmented | pair_file | gps | spps | temporal
      pair_file='',             # CSV anchor,partner,class (pairs=pair_file).
      pairs_per_class=0,        # P; 0 → one pair per image.
      classes='all',            # 'all', a count, or a class-list file.
      match='pairs',            # pairs: PS uses 2P images; images: same P.
      pair_seed=0,              # Fixes the pair set independently of seed.
      resample_partner=False,   # semantic: redraw partners every epoch.
      pair_transform='default',  # augmented partner: default | none.
      # pairs=gps (GPS-SSL): partner drawn from the k nearest neighbours in a
      # prior embedding: pixels | random_init | autoencoder | checkpoint:<dir>
      # | npy:<file> (the autoencoder is trained here: ae_epochs, latent ae_dim).
      gps=dict(k=4, include_self=False, prior='pixels', metric='l2',
               pixel_size=16, pca_dim=0, refresh_epochs=0, ae_epochs=5,
               ae_dim=128),
      # pairs=spps (SPPS): an augmented pair plus the anchor's semantic
      # positive set: its neighbours in the prior with cosine similarity ≥
      # threshold (squared distance ≤ threshold for metric=l2), at most
      # max_positives of them, as extra positives.
      spps=dict(prior='pixels', metric='cosine', threshold=0.9,
                max_positives=2, pixel_size=16, pca_dim=0, ae_epochs=5,
                ae_dim=128),
      # pairs=temporal: frames i and i+gap of one shot (gap drawn from
      # [min_gap, max_gap]); shots from frame differences (cut_threshold × the
      # median difference) or given as shot_starts='0,30,76'; tracker=True
      # pairs a region of frame i with the region tracked into frame i+gap.
      temporal=dict(min_gap=1, max_gap=4, shot_starts='', cut_threshold=3.0,
                    tracker=False, region_fraction=0.5, search_radius=8),
      # Where views are made: host (numpy/PIL in the grain workers) or
      # device (jnp ops inside the jitted step; the host only gathers uint8).
      augment_on='host',
      # Cut every image to its object box first (Tiny-ImageNet train boxes):
      # the object-centric-bias study pretrains on these vs full images.
      object_crops=False,
      num_workers=2,            # grain threads producing batches.
      prefetch=4,               # batches buffered ahead by grain.
      augment=dict(
          preset='strong',      # strong|asymmetric|weak_rrc|weak|none
          drop='',              # e.g. 'grayscale' or 'blur,color_jitter'.
          crop_min_scale=0.08,
          color_jitter=(0.4, 0.4, 0.2, 0.1),
          jitter_prob=0.8,
          gray_prob=0.2,
          blur_prob=-1.0,       # -1: 0.5 above 32 px, off at 32 px.
          # Multi-crop (DINO): N extra local views, alternately from the
          # anchor and the partner, of local_crop_size px (0: 3/8 of
          # image_size) from crop scale (local_crop_min_scale,
          # crop_min_scale).
          local_crops=0,
          local_crop_size=0,
          local_crop_min_scale=0.05,
      ),
  ))


def eval_config() -> ml_collections.ConfigDict:
  """Evaluation: kNN and linear probe on CIFAR-10 and Tiny-ImageNet val."""
  return ml_collections.ConfigDict(dict(
      datasets='cifar10,tiny_imagenet,cifar100?,stl10?',  # '?' = if present.
      knn_k='20,200',
      knn_temperature=0.07,
      probe=True,
      probe_max_iter=1000,
      batch_size=256,
      train_limit=0,   # 0 = all training images of each eval dataset.
      test_limit=0,
      every_epochs=0.0,  # > 0: learning curve (eval_curve.jsonl), from epoch 0.
      image_size=0,      # 0 = the pretraining resolution.
  ))


# Per-method defaults for small images (METHODS.md §3): the method's own
# settings, the optimizer (name, base lr for batch 256, weight decay) and the
# augmentation preset.
METHOD_DEFAULTS = {
    'simclr': (dict(temperature=0.2, proj_hidden_dim=2048, proj_dim=128,
                    proj_layers=2, bn_per_view=False),
               dict(name='lars', base_lr=0.4, weight_decay=1e-4), 'strong'),
    'mocov2': (dict(temperature=0.2, proj_hidden_dim=2048, proj_dim=256,
                    # The paper's EMA and its 8 GPUs' shuffled BN; with
                    # EMA 0.99 the embedding outran the queue (BENCHMARKS.md).
                    queue_size=16384, ema_base=0.999, symmetric=True,
                    shuffle_bn_groups=8),
               dict(name='sgd', base_lr=0.3, weight_decay=1e-4), 'strong'),
    'byol': (dict(proj_hidden_dim=4096, proj_dim=256, pred_hidden_dim=4096,
                  ema_base=0.99),
             dict(name='lars', base_lr=1.0, weight_decay=1e-5), 'asymmetric'),
    'dino': (dict(proj_hidden_dim=2048, bottleneck_dim=256,
                  num_prototypes=4096, student_temp=0.1,
                  teacher_temp_start=0.04, teacher_temp=0.07,
                  teacher_temp_warmup_epochs=30.0, center_momentum=0.9,
                  ema_base=0.996, freeze_last_layer_epochs=1.0,
                  use_bn_in_head=False),
             dict(name='lars', base_lr=0.3, weight_decay=1e-5), 'asymmetric'),
    'vicreg': (dict(proj_hidden_dim=2048, proj_dim=2048, proj_layers=3,
                    sim_weight=25.0, var_weight=25.0, cov_weight=1.0),
               dict(name='lars', base_lr=0.3, weight_decay=1e-4),
               'asymmetric'),
    'barlow': (dict(proj_hidden_dim=2048, proj_dim=2048, proj_layers=3,
                    lambd=0.0051, scale=1.0),
               # The paper's biases and BN parameters: lr 0.0048 / 0.2.
               dict(name='lars', base_lr=0.3, weight_decay=1e-4,
                    bias_lr_factor=0.024),
               'asymmetric'),
    'pirl': (dict(proj_dim=128, temperature=0.07, num_negatives=4096,
                  bank_momentum=0.5, jigsaw_weight=0.5, objective='infonce'),
             dict(name='sgd', base_lr=0.12, weight_decay=1e-4), 'strong'),
    'supervised': (dict(), dict(name='sgd', base_lr=0.1, weight_decay=5e-4),
                   'weak_rrc'),
}
# Head sizes for ':smoke' (seconds-long tests), applied where a method has them.
SMOKE_METHOD = dict(proj_hidden_dim=32, proj_dim=16, pred_hidden_dim=32,
                    bottleneck_dim=16, num_prototypes=64, queue_size=64,
                    num_negatives=32, shuffle_bn_groups=2)


def method_config(name: str):
  """(method ConfigDict, optimizer overrides, augmentation preset) of a method."""
  method, optim, preset = METHOD_DEFAULTS[name]
  return ml_collections.ConfigDict(dict(name=name, **method)), optim, preset


def pretrain_config(method: str, pairs: str, name: str, arg):
  """The full config of ``method`` on ``pairs`` (see base_config)."""
  method_cfg, optim, preset = method_config(method)
  c = base_config(method_cfg, pairs, name, arg)
  c.optim.update(optim)
  c.data.augment.preset = preset
  if method == 'simclr':
    # SimCLR's stronger colour jitter (solo-learn's CIFAR/ImageNet-100 setting).
    c.data.augment.color_jitter = (0.8, 0.8, 0.8, 0.2)
  return c


def split_switches(arg, **spec):
  """(own switches typed like ``spec``, the rest of ``arg``) for configs with
  switches of their own (e.g. ``:aug=weak,runlocal``)."""
  own, rest = [], []
  for token in (arg or '').split(','):
    if token.strip():
      (own if token.strip().partition('=')[0] in spec else rest).append(token)
  return parse_arg(','.join(own), **spec), ','.join(rest) or None


# Where the mined pair sources pretrain by default: GPS-SSL and SPPS report
# CIFAR-10 (ResNet-18, 32 px); temporal pairs need a video.
MINED_DATA = {
    'gps': dict(dataset='cifar10', image_size=32, arch='resnet18'),
    'spps': dict(dataset='cifar10', image_size=32, arch='resnet18'),
    'temporal': dict(dataset='video_bikes.npz', image_size=64,
                     arch='resnet18'),
}


def mined_config(method: str, pairs: str, name: str, arg):
  """``pretrain_config`` for a mined pair source (gps, spps, temporal).

  Full shape: ResNet-18 (CIFAR stem) at the source's resolution on its
  dataset (MINED_DATA), batch 256, 200 epochs; ``:runlocal``/``:smoke`` as
  everywhere, plus the switch ``aug=strong`` (the method's preset, default)
  or ``aug=weak`` (flip only), GPS-SSL's comparison.
  """
  own, rest = split_switches(arg, aug='strong')
  args = parse_arg(rest, **SWITCHES)
  c = pretrain_config(method, pairs, name, rest)
  c.name = run_name(name, arg)
  where = MINED_DATA[pairs]
  c.data.dataset = where['dataset']
  if not (args.runlocal or args.smoke):
    c.model.arch = args.arch or where['arch']
    c.data.image_size = args.size or where['image_size']
  if args.runlocal:
    c.eval.datasets = 'cifar10'
  if pairs == 'spps':
    c.data.pair_transform = 'none'  # Plain two-view SimCLR/MoCo + positives.
  if own.aug == 'weak':
    c.data.augment.preset = 'weak'
  elif own.aug != 'strong':
    raise ValueError(f'Unknown aug={own.aug!r}; use aug=weak (flip only) or '
                     'aug=strong.')
  return c


def base_config(method: ml_collections.ConfigDict, pairs: str, name: str,
                arg) -> ml_collections.ConfigDict:
  """The full pretraining config at the paper's shape, then the switches.

  Paper shape (arXiv 2510.08722): ResNet-50, 64 px, batch 256, 200 epochs.
  ``:runlocal`` is a CPU-minutes run (ResNet-18 at width 1/4, 32 px) and
  ``:smoke`` a seconds-long one for tests.
  """
  args = parse_arg(arg, **SWITCHES)
  c = ml_collections.ConfigDict()
  c.task = 'train'
  c.name = run_name(name, arg)
  c.seed = args.seed
  c.batch_size = 256
  c.epochs = 200.0
  c.total_steps = 0  # > 0 overrides epochs.
  c.log_every_steps = 20
  c.checkpoint_every_steps = 1000
  c.keep_checkpoints = 2
  # True: train from step 0 when the workdir's checkpoints are all unreadable
  # (they stay in checkpoints_unreadable/); otherwise such a run is refused.
  c.restart = False
  c.progress = True
  c.model = ml_collections.ConfigDict(dict(
      arch='resnet50', width_multiplier=1.0, stem='cifar', patch_size=8,
      dtype='float32', init='default',
      # Recompute each block's activations in the backward pass (same loss
      # and gradients). On for the paper shape: SimCLR ResNet-50 at 64 px,
      # batch 256 keeps 103 GiB of activations for the backward pass without
      # it (fp32; 80 GiB in bf16), more than the paper's 80 GB A100, and
      # 16 GiB (8.5) with it (launch/memory_analysis.py, BENCHMARKS
      # "Memory"). The :runlocal and :smoke shapes turn it off.
      remat=True))
  c.method = method
  c.optim = ml_collections.ConfigDict(dict(
      name='lars', base_lr=0.3, weight_decay=1e-4, momentum=0.9,
      warmup_epochs=10.0, trust_coefficient=0.02, bias_lr_factor=1.0))
  c.data = data_config(pairs)
  c.eval = eval_config()

  if args.runlocal or args.smoke:
    c.model.remat = False  # Small enough without; recomputing costs time.
  if args.runlocal:
    c.model.arch, c.model.width_multiplier = 'resnet18', 0.25
    c.data.image_size = 32
    c.batch_size = 128
    c.total_steps = 80
    c.optim.warmup_epochs = 0.5
    c.checkpoint_every_steps = 40
    c.eval.datasets = 'cifar10,tiny_imagenet'
    c.eval.train_limit = 5000
    c.eval.probe_max_iter = 200
  if args.smoke:
    c.model.arch, c.model.width_multiplier = 'resnet_tiny', 1.0
    for key, value in SMOKE_METHOD.items():
      if key in c.method:
        c.method[key] = value
    c.data.image_size = 16
    c.data.classes = '8'
    c.data.pairs_per_class = 4
    c.batch_size = 8
    c.total_steps = 4
    c.optim.warmup_epochs = 0.0
    c.log_every_steps = 2
    c.checkpoint_every_steps = 2
    c.progress = False
    c.eval.datasets = 'tiny_imagenet'
    c.eval.train_limit = 400
    c.eval.test_limit = 200
    c.eval.probe_max_iter = 50
    c.eval.batch_size = 64
  if args.arch:
    c.model.arch = args.arch
  if args.size:
    c.data.image_size = args.size
  return c
