"""Shared config pieces: argument parsing and the base pretraining config.

A config file's ``get_config(arg)`` receives the text after ``:`` in
``--config=configs/simclr_sp.py:runlocal,arch=resnet18``; :func:`parse_arg`
turns it into typed switches. Every field can then be overridden with
``--config.a.b=value``; the config is locked, so a misspelt key is an error.

Switches of every pretraining config (SWITCHES): none — the paper's shape
(ResNet-50, CIFAR stem, 64 px, batch 256, 200 epochs); ``runlocal`` — CPU
minutes (ResNet-18 width 1/4, 32 px, batch 128, 80 steps); ``smoke`` —
seconds (tests); ``arch=``, ``size=``, ``seed=``. A method's own config
(configs/<method>.py) adds ``pairs=sp|pa`` and ``scale=cpu``: the CPU-scale
studies' run (CPU_SCALE, CPU_PAIRS) with the method's recipe ``CPU``.
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
      # A builtin dataset (cifar10, cifar100, stl10, tiny_imagenet) missing
      # from data_dir is downloaded and prepared there (what `ssl-pairs
      # prepare-data` does); False: its absence is an error naming that
      # command. Optional eval datasets ('cifar100?') are never downloaded.
      download=True,
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
      # True: a linear classifier trained inside the step on the anchor's
      # stop-gradient features (ssl_pairs/online_probe.py); its batch
      # accuracy is logged and its test accuracy reported beside the probe.
      online_probe=False,
      # True: the final report shows the untrained encoder's numbers (the
      # same network and seed before any step) and the gain beside the
      # trained ones: the learning curve's epoch-0 point when there is one,
      # else evaluated once and cached in ~/.cache/ssl_pairs/untrained
      # ($SSL_PAIRS_CACHE_DIR) per network, seed and evaluation.
      untrained=True,
      # --- Localization transfer (ssl_pairs/evals/boxes.py; off by default).
      # box_probe: a ridge head on the frozen features predicts each test
      # image's object box → '<dataset>_boxes': mean IoU %, % with IoU ≥ 0.5,
      # and the mean-training-box baseline's two numbers.
      box_probe=False,
      # object_crops: kNN + linear probe on train/test images cut to their
      # object boxes ('cropped boxes' protocol) → '<dataset>_crops'.
      object_crops=False,
      # The datasets of both: those with boxes (tiny_imagenet: train → val;
      # voc2007: TFDS voc/2007 as ArrayRecord, largest object); '?' = skip
      # with a note when absent.
      box_datasets='tiny_imagenet,voc2007?',
      # --- end localization transfer.
  ))


# Head sizes for ':smoke' (seconds-long tests), applied where a method has them.
SMOKE_METHOD = dict(proj_hidden_dim=32, proj_dim=16, pred_hidden_dim=32,
                    bottleneck_dim=16, num_prototypes=64, queue_size=64,
                    num_negatives=32, shuffle_bn_groups=2)

# The CPU-scale studies' shape (``scale=cpu``; launch/compare_*.py and
# ``reproduce --scale=cpu`` take these as their flag defaults): Tiny-ImageNet
# train, all 200 classes × 100 images (PS and PA on the same images), views
# cut from the stored 64-px images at 32 px, ResNet-18 width 1/4, batch 128,
# 8 epochs, evaluated on CIFAR-10 and Tiny-ImageNet val with every training
# image.
CPU_SCALE = dict(arch='resnet18', width=0.25, image_size=32, batch_size=128,
                 epochs=8.0, seed=0, eval_datasets='cifar10,tiny_imagenet',
                 eval_train_limit=0)
CPU_PAIRS = dict(classes='all', pairs_per_class=100, match='images',
                 load_size=-1)
# lightly's CIFAR-10 benchmark optimizer (SGD, lr 0.06 at batch 128, weight
# decay 5e-4): the CPU recipe of methods whose own optimizer fails there.
LIGHTLY_SGD = dict(name='sgd', base_lr=0.12, weight_decay=5e-4,
                   warmup_epochs=0.0)


def simclr_jitter(strength: float):
  """SimCLR's colour jitter of strength s: brightness, contrast, saturation
  0.8·s and hue 0.2·s."""
  return (0.8 * strength, 0.8 * strength, 0.8 * strength, 0.2 * strength)


def set_scale(c, *, arch: str, width: float, image_size: int,
              batch_size: int, epochs: float, seed: int, eval_datasets: str,
              eval_train_limit: int, eval_every: float = 0.0):
  """Sets a study's shared scale and evaluation on one run's config."""
  c.data.image_size = image_size
  c.model.arch, c.model.width_multiplier = arch, width
  c.batch_size = batch_size
  c.total_steps = 0
  c.epochs = epochs
  c.seed = seed
  c.checkpoint_every_steps = 200
  c.log_every_steps = 10
  c.eval.datasets = eval_datasets
  c.eval.train_limit = eval_train_limit
  c.eval.test_limit = 0
  c.eval.every_epochs = eval_every
  c.eval.probe_max_iter = 1000
  return c


def apply_cpu_recipe(c, cpu):
  """A method's CPU recipe (its config file's ``CPU``): warm-up of one epoch
  or a quarter of the run, then the recipe's optim/method/augment/model
  entries."""
  c.optim.warmup_epochs = min(1.0, c.epochs / 4)
  for section, values in cpu.items():
    target = c.data.augment if section == 'augment' else c[section]
    for key, value in values.items():
      target[key] = value
  return c


def round_queue(c):
  """A queue (MoCo) holds a whole number of the keys enqueued per step."""
  if 'queue_size' in c.method:
    keys = c.batch_size * (2 if c.method.symmetric else 1)
    c.method.queue_size = max(keys, c.method.queue_size // keys * keys)
  return c


PAIRS_SWITCH = {'sp': 'semantic', 'pa': 'augmented'}


def method_pretrain_config(method, optim, augment, cpu, arg):
  """A method config file's config: its settings (``method``, ``optim``,
  ``augment``; ``cpu`` is its CPU recipe) on the pair source of the switch
  ``pairs=sp|pa`` (default sp), at the paper's shape or, with
  ``scale=cpu``, the CPU-scale studies'; then the common switches."""
  own, rest = split_switches(arg, pairs='sp', scale='paper')
  if own.pairs not in PAIRS_SWITCH:
    raise ValueError(f'Unknown pairs={own.pairs!r}; use pairs=sp (semantic '
                     'pairs) or pairs=pa (augmented pairs).')
  if own.scale not in ('paper', 'cpu'):
    raise ValueError(f'Unknown scale={own.scale!r}; use scale=paper '
                     '(default) or scale=cpu (the CPU-scale studies).')
  name = f'{method["name"]}_{own.pairs}'
  cpu_scale = own.scale == 'cpu'
  c = pretrain_config(method, optim, augment, PAIRS_SWITCH[own.pairs], name,
                      ','.join(['runlocal', rest or '']) if cpu_scale
                      else rest)
  c.name = run_name(name, ','.join(
      t for t in (arg or '').split(',') if not t.strip().startswith('pairs=')))
  if cpu_scale:
    args = parse_arg(rest, **SWITCHES)
    set_scale(c, **dict(CPU_SCALE, seed=args.seed))
    c.data.classes = CPU_PAIRS['classes']
    c.data.pairs_per_class = CPU_PAIRS['pairs_per_class']
    c.data.match = CPU_PAIRS['match']
    c.data.load_size = CPU_PAIRS['load_size']
    apply_cpu_recipe(c, cpu)
    if args.arch:
      c.model.arch = args.arch
    if args.size:
      c.data.image_size = args.size
    round_queue(c)
  return c


def pretrain_config(method, optim, augment, pairs: str, name: str, arg):
  """The full config of the method settings ``method`` (a dict with its
  name), optimizer overrides ``optim`` and augmentation overrides
  ``augment`` on ``pairs`` (see base_config)."""
  c = base_config(ml_collections.ConfigDict(dict(method)), pairs, name, arg)
  c.optim.update(optim)
  c.data.augment.update(augment)
  return c


def method_module(name: str):
  """configs/<name>.py, the config file of a method."""
  import importlib  # pylint: disable=g-import-not-at-top
  return importlib.import_module(f'configs.{name}')


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
  m = method_module(method)
  c = pretrain_config(m.METHOD, m.OPTIM, m.AUGMENT, pairs, name, rest)
  c.name = run_name(name, arg)
  where = MINED_DATA[pairs]
  c.data.dataset = where['dataset']
  if args.smoke:  # Mined sources' own data is slow to evaluate (or a video).
    c.eval.datasets = 'tiny_imagenet'
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
      # 'same': flax's SAME padding on strided convs (pads (0, 1) on even
      # inputs; every committed result); 'torch': torchvision's symmetric
      # padding, so `ssl-pairs export` gives weights torchvision reproduces
      # exactly (docs/export.md).
      padding='same',
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
    # The run's own dataset (tiny_imagenet unless --config.data.dataset
    # names another), so a smoke test of the user's data evaluates on it.
    c.eval.datasets = 'pretraining'
    c.eval.train_limit = 400
    c.eval.test_limit = 200
    c.eval.probe_max_iter = 50
    c.eval.batch_size = 64
  if args.arch:
    c.model.arch = args.arch
  if args.size:
    c.data.image_size = args.size
  return c
