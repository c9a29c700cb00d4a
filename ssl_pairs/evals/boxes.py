"""Localization transfer on frozen features: a box probe and object-crop
classification (``eval.box_probe``, ``eval.object_crops``).

**Box probe.** A ridge-regression head on the frozen, standardised pooled
features (the same features as kNN and the linear probe: one vector per
un-augmented image) predicts each image's object box as normalised
(cx, cy, w, h) in [0, 1] of the image's width and height. Ridge is linear in
its targets, so the predictions are those of regressing (x0, y0, x1, y1): the
parametrisation only decides the clipping — a predicted box is cut to the
image and a negative side becomes an empty box (IoU 0). The head is solved in
closed form (no learning rate, no epochs, deterministic): the objective is
mean squared error + λ‖W‖² with an unpenalised intercept, solved for every λ of
a log grid from one eigendecomposition, λ picked by mean IoU on a stratified
10 % held-out part of the training images (ties to the larger λ), then refitted
on all of them. Reported on the test split: ``box_miou`` (mean IoU, %),
``box_iou50`` (% of images with IoU ≥ 0.5), and the same two numbers of the
trivial baseline that predicts the mean training box for every image
(``box_miou_meanbox``, ``box_iou50_meanbox``): a head no better than that says
the features carry no location.

**Object crops.** The "cropped boxes" protocol of Purushwalkam & Gupta
("Demystifying Contrastive Self-Supervised Learning", NeurIPS 2020): the train
and test images cut to their ground-truth boxes (``sources.object_crops``: a
square around the box, clipped to the image, resized to the evaluation
resolution), then the same kNN and linear probe as the full images.

Datasets with boxes (``eval.box_datasets``):

* ``tiny_imagenet`` — train images with their ``<wnid>_boxes.txt`` box → val
  images with their ``val_annotations.txt`` box (one box per image, in
  64 × 64 pixels, inclusive corners);
* ``voc2007`` — TFDS ``voc/2007`` prepared as ArrayRecord, the largest object
  of each image (its class is the label for the crops): train → test split.
  Without it (``voc2007?``) it is skipped with a note saying how to prepare it.
"""

import dataclasses
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ssl_pairs.data import sources as sources_lib
from ssl_pairs.errors import UserError
from ssl_pairs.evals import features as features_lib
from ssl_pairs.evals import knn as knn_lib
from ssl_pairs.evals import linear_probe as probe_lib
from ssl_pairs.evals import sets as sets_lib
from ssl_pairs.metrics import say

BOX_DATASETS = ('tiny_imagenet', 'voc2007')
VOC_TFDS_NAME = 'voc/2007'
TINY_IMAGENET_SIZE = 64  # Every Tiny-ImageNet image is 64 × 64.
# λ of the ridge head (features standardised, so λ is relative to the
# per-feature variance); the top of the grid is ≈ the mean box.
DEFAULT_L2_GRID = tuple(10.0**e for e in range(-3, 6))
HOLDOUT = 0.1
# Result columns of eval.md (in this order), after the classification ones.
COLUMNS = ('box_miou', 'box_miou_meanbox', 'box_iou50')
TITLES = {'box_miou': 'box mIoU %', 'box_miou_meanbox': 'mean-box mIoU %',
          'box_iou50': 'box IoU≥0.5 %'}


# ------------------------------------------------------------------ geometry


def box_iou(a, b) -> np.ndarray:
  """IoU of boxes ``a`` and ``b`` ([..., 4] as x0, y0, x1, y1; broadcast).

  An empty box (x1 ≤ x0 or y1 ≤ y0) has area 0; two empty boxes have IoU 0.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  iw = np.clip(np.minimum(a[..., 2], b[..., 2]) -
               np.maximum(a[..., 0], b[..., 0]), 0, None)
  ih = np.clip(np.minimum(a[..., 3], b[..., 3]) -
               np.maximum(a[..., 1], b[..., 1]), 0, None)
  inter = iw * ih
  area = lambda x: (np.clip(x[..., 2] - x[..., 0], 0, None) *
                    np.clip(x[..., 3] - x[..., 1], 0, None))
  union = area(a) + area(b) - inter
  return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def boxes_to_targets(boxes) -> np.ndarray:
  """(x0, y0, x1, y1) → (cx, cy, w, h)."""
  b = np.asarray(boxes, np.float64)
  return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
                   b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)


def targets_to_boxes(targets) -> np.ndarray:
  """(cx, cy, w, h) → (x0, y0, x1, y1), sides ≥ 0, clipped to [0, 1]."""
  t = np.asarray(targets, np.float64)
  half_w, half_h = np.clip(t[:, 2], 0, None) / 2, np.clip(t[:, 3], 0, None) / 2
  return np.clip(np.stack([t[:, 0] - half_w, t[:, 1] - half_h,
                           t[:, 0] + half_w, t[:, 1] + half_h], axis=1), 0, 1)


def tiny_imagenet_boxes(boxes) -> np.ndarray:
  """Tiny-ImageNet boxes (inclusive pixel corners of the 64-px original)
  normalised to [0, 1]: [0, 0, 63, 63] → [0, 0, 1, 1]."""
  b = np.asarray(boxes, np.float64).copy()
  b[:, 2:] += 1
  return np.clip(b / TINY_IMAGENET_SIZE, 0, 1)


# ---------------------------------------------------------------- ridge head


def _ridge_path(x, y, l2_grid):
  """{λ: (W [D, 4], b [4])} minimising mean‖y − xW − b‖² + λ‖W‖², for every λ
  from one eigendecomposition (of xᵀx, or of xxᵀ when N < D)."""
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  xm, ym = x.mean(0), y.mean(0)
  xc, yc = x - xm, y - ym
  n = len(x)
  out = {}
  if n >= x.shape[1]:
    evals, evecs = np.linalg.eigh(xc.T @ xc)
    proj = evecs.T @ (xc.T @ yc)
    for l2 in l2_grid:
      w = evecs @ (proj / (np.clip(evals, 0, None) + n * l2)[:, None])
      out[l2] = (w, ym - xm @ w)
  else:  # Dual form: W = xᵀ (xxᵀ + nλ)⁻¹ y.
    evals, evecs = np.linalg.eigh(xc @ xc.T)
    proj = evecs.T @ yc
    for l2 in l2_grid:
      w = xc.T @ (evecs @ (proj / (np.clip(evals, 0, None) + n * l2)[:, None]))
      out[l2] = (w, ym - xm @ w)
  return out


def box_head(train_features, train_boxes, test_features,
             train_labels=None, l2_grid: Sequence[float] = DEFAULT_L2_GRID,
             holdout: float = HOLDOUT, seed: int = 0) -> Dict[str, object]:
  """Fits the ridge box head and predicts the test boxes.

  Args:
    train_features: [N, D]; train_boxes: [N, 4] normalised (x0, y0, x1, y1).
    test_features: [M, D].
    train_labels: int [N] to stratify the held-out part by (None: one class).
    l2_grid: the λ tried; holdout: the held-out fraction; seed: its draw.

  Returns:
    {'boxes': [M, 4] predicted boxes, 'l2': chosen λ, 'val_miou': {λ: held-out
    mean IoU %}}.
  """
  xtr = np.asarray(train_features, np.float64)
  mean, std = xtr.mean(0), xtr.std(0) + 1e-6
  xtr = (xtr - mean) / std
  xte = (np.asarray(test_features, np.float64) - mean) / std
  ttr = boxes_to_targets(train_boxes)
  l2_grid = sorted(float(v) for v in l2_grid)
  val_miou = {}
  if len(l2_grid) > 1:
    labels = (np.zeros(len(xtr), np.int64) if train_labels is None
              else np.asarray(train_labels))
    fit, val = probe_lib.stratified_holdout(labels, holdout, seed)
    for l2, (w, b) in _ridge_path(xtr[fit], ttr[fit], l2_grid).items():
      iou = box_iou(targets_to_boxes(xtr[val] @ w + b),
                    np.asarray(train_boxes)[val])
      val_miou[l2] = float(100 * iou.mean())
    best = max(l2_grid, key=lambda l2: (val_miou[l2], l2))
  else:
    best = l2_grid[0]
  w, b = _ridge_path(xtr, ttr, [best])[best]
  return {'boxes': targets_to_boxes(xte @ w + b), 'l2': best,
          'val_miou': val_miou}


def box_probe(train_features, train_boxes, test_features, test_boxes,
              train_labels=None, l2_grid: Sequence[float] = DEFAULT_L2_GRID,
              seed: int = 0) -> Dict[str, float]:
  """The box probe's numbers (see the module docstring), IoUs in %."""
  head = box_head(train_features, train_boxes, test_features, train_labels,
                  l2_grid, seed=seed)
  test_boxes = np.asarray(test_boxes, np.float64)
  iou = box_iou(head['boxes'], test_boxes)
  mean_box = targets_to_boxes(
      boxes_to_targets(train_boxes).mean(0, keepdims=True))
  base = box_iou(mean_box, test_boxes)
  return {'box_miou': float(100 * iou.mean()),
          'box_iou50': float(100 * np.mean(iou >= 0.5)),
          'box_miou_meanbox': float(100 * base.mean()),
          'box_iou50_meanbox': float(100 * np.mean(base >= 0.5)),
          'box_l2': head['l2']}


# ---------------------------------------------------------------------- data


@dataclasses.dataclass
class BoxSet:
  """A dataset with one object box per image: splits at the eval resolution,
  boxes normalised to [0, 1] (x0, y0, x1, y1) of the original image."""
  name: str
  train: sources_lib.ImageSource
  test: sources_lib.ImageSource
  train_boxes: np.ndarray
  test_boxes: np.ndarray
  # fn() → (train crops, test crops) at the eval resolution.
  crops: object = None
  note: str = ''


def no_boxes_error(name: str, option: str) -> UserError:
  return UserError(
      f'{option} needs object boxes, which {name!r} does not have; only '
      f'{" and ".join(BOX_DATASETS)} (TFDS {VOC_TFDS_NAME}) have them: set '
      '--config.eval.box_datasets to those (voc2007? = if present), or turn '
      f'it off with --config.{option}=False.')


def voc_prepare_note(data_dir: str, why: str) -> str:
  return (f'VOC 2007 is not prepared ({why}): build it with `tfds build '
          f'{VOC_TFDS_NAME} --file_format=array_record --data_dir='
          f'{data_dir}` (needs tensorflow and tensorflow-datasets), or drop '
          'voc2007 from eval.box_datasets.')


def _voc_source(split: str, data_dir: str, image_size: int):
  """(ImageSource of VOC 2007 ``split`` labelled by its largest object,
  that object's normalised box [N, 4]); a UserError names how to prepare it."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise UserError(voc_prepare_note(
        data_dir, 'tensorflow-datasets is not installed')) from e
  dirs = sources_lib.tfds_dirs(data_dir)
  source = None
  for d in dirs:
    try:
      source = tfds.data_source(VOC_TFDS_NAME, split=split, data_dir=d,
                                download=False)
      break
    except Exception:  # pylint: disable=broad-except
      continue  # TFDS raises several types for "not prepared".
  if source is None:
    raise UserError(voc_prepare_note(
        data_dir, f'no ArrayRecord copy of split {split!r} in '
        f'{" or ".join(dirs)}'))
  try:
    class_names = list(
        source.dataset_info.features['objects']['label'].names)
  except Exception:  # pylint: disable=broad-except
    class_names = None
  images, labels, boxes = [], [], []
  for i in range(len(source)):
    record = source[i]
    objects = record['objects']
    bbox = np.asarray(objects['bbox'], np.float64).reshape(-1, 4)
    if not len(bbox):
      continue
    # TFDS boxes are (ymin, xmin, ymax, xmax), normalised.
    area = (bbox[:, 2] - bbox[:, 0]) * (bbox[:, 3] - bbox[:, 1])
    j = int(np.argmax(area))
    ymin, xmin, ymax, xmax = bbox[j]
    images.append(sources_lib.to_rgb_uint8(np.asarray(record['image']),
                                           image_size))
    labels.append(int(np.asarray(objects['label']).reshape(-1)[j]))
    boxes.append([xmin, ymin, xmax, ymax])
  labels = np.asarray(labels, np.int64)
  if class_names is None:
    class_names = [str(c) for c in range(int(labels.max()) + 1)]
  src = sources_lib.ImageSource(
      name='voc2007', split=split, labels=labels, class_names=class_names,
      image_size=image_size, images=np.stack(images))
  return src, np.clip(np.asarray(boxes, np.float64), 0, 1)


def _with_tiny_units(source, boxes):
  """``source`` carrying ``boxes`` (normalised) in the 64-px units that
  ``sources.object_crops`` reads."""
  b = np.asarray(boxes, np.float64) * TINY_IMAGENET_SIZE
  b[:, 2:] -= 1
  return dataclasses.replace(source, boxes=b)


def _resized(source, size: int):
  if source.image_size == size:
    return source
  return dataclasses.replace(
      source, image_size=size, loader=None,
      images=np.stack([sources_lib.to_rgb_uint8(source[i], size)
                       for i in range(len(source))]))


def load_box_set(name: str, data_dir: str, image_size: int, eval_config,
                 seed: int, download: bool = False) -> BoxSet:
  """``name`` (one of :data:`BOX_DATASETS`) with its boxes, limited by
  ``eval.train_limit``/``test_limit`` as the classification sets are."""
  if name == 'tiny_imagenet':
    s = sets_lib.load_eval_set(name, data_dir, image_size, eval_config, seed,
                              download=download)

    def crops():
      # Cut from the 64-px originals, then resized: a box of a downsampled
      # image would lose detail first (same images: the limits are drawn from
      # the labels alone).
      native = sets_lib.load_eval_set(
          name, data_dir, max(image_size, TINY_IMAGENET_SIZE), eval_config,
          seed, download=download)
      return tuple(_resized(sources_lib.object_crops(x), image_size)
                   for x in (native.train, native.test))

    return BoxSet(s.name, s.train, s.test, tiny_imagenet_boxes(s.train.boxes),
                  tiny_imagenet_boxes(s.test.boxes), crops, s.note)
  if name == 'voc2007':
    (train, tb), (test, sb) = (_voc_source(split, data_dir, image_size)
                               for split in ('train', 'test'))
    split_sets = []
    for src, b, limit in ((train, tb, eval_config.train_limit),
                          (test, sb, eval_config.test_limit)):
      idx = sets_lib.stratified_subset(src.labels, limit, seed)
      split_sets.append((src.subset(idx), b[idx]))
    (train, tb), (test, sb) = split_sets
    crops = lambda: (sources_lib.object_crops(_with_tiny_units(train, tb)),
                     sources_lib.object_crops(_with_tiny_units(test, sb)))
    return BoxSet('voc2007', train, test, tb, sb, crops,
                  'largest object per image')
  raise no_boxes_error(name, 'eval.box_probe')


def _options(eval_config) -> List[str]:
  return [o for o in ('box_probe', 'object_crops')
          if eval_config.get(o, False)]


def box_dataset_names(eval_config, pretraining: Optional[str] = None
                      ) -> List[Tuple[str, bool]]:
  """[(name, optional)] of ``eval.box_datasets``; a name without boxes is a
  UserError (checked before any data is read)."""
  options = _options(eval_config)
  if not options:
    return []
  names = sets_lib.parse_datasets(
      eval_config.get('box_datasets', ','.join(BOX_DATASETS)), pretraining)
  for name, _ in names:
    if name not in BOX_DATASETS:
      raise no_boxes_error(sets_lib.result_key(name), f'eval.{options[0]}')
  if not names:
    raise UserError(f'eval.{options[0]} is on but eval.box_datasets is empty; '
                    f'name {" or ".join(BOX_DATASETS)}, or turn it off with '
                    f'--config.eval.{options[0]}=False.')
  return names


# ---------------------------------------------------------------- evaluation


class BoxTasks:
  """The box probe and object-crop classification of an Evaluator (its
  config, feature function, seed and skip notes); sets loaded once."""

  def __init__(self, evaluator):
    self.ev = evaluator
    self.names = box_dataset_names(evaluator.config,
                                   evaluator.pretraining_dataset)
    self._sets: Optional[List[BoxSet]] = None
    self._crops: Dict[str, tuple] = {}

  def __bool__(self):
    return bool(self.names)

  def sets(self) -> List[BoxSet]:
    if self._sets is None:
      ev = self.ev

      def skip(name, error):
        for suffix in self._suffixes():
          ev.skipped[f'{name}_{suffix}'] = str(error)
        say(f'Skipping optional box dataset {name}: {error}')

      self._sets = sets_lib.load_all(
          self.names, lambda name, optional: load_box_set(
              name, ev.data_dir, ev.image_size, ev.config, ev.seed,
              download=ev.download and not optional), skip)
    return self._sets

  def _suffixes(self):
    return [s for o, s in (('box_probe', 'boxes'), ('object_crops', 'crops'))
            if self.ev.config.get(o, False)]

  def protocol(self) -> Dict[str, object]:
    c = self.ev.config
    return {'task': 'box_probe', 'image_size': self.ev.image_size,
            'train_limit': c.train_limit, 'test_limit': c.test_limit,
            'head': 'ridge (cx, cy, w, h)', 'l2_grid': list(DEFAULT_L2_GRID),
            'holdout': HOLDOUT, 'seed': self.ev.seed}

  def __call__(self, variables, ks, extracted=None
               ) -> Dict[str, Dict[str, object]]:
    """{'<name>_boxes': box probe, '<name>_crops': kNN/probe on crops}.

    ``extracted``: {eval set name: (train paths, test paths, train features,
    test features)} the Evaluator already computed (reused for the box probe
    when the images are the same).
    """
    ev, results = self.ev, {}
    bs = ev.config.batch_size
    feats = lambda src: features_lib.extract_features(ev.feature_fn,
                                                      variables, src, bs,
                                                      ev.mesh)
    for s in self.sets():
      if ev.config.get('box_probe', False):
        t0 = time.time()
        same = (extracted or {}).get(s.name)
        if same is not None and same[0] == s.train.paths and (
            same[1] == s.test.paths) and s.train.paths is not None:
          ftr, fte = same[2], same[3]
        else:
          ftr, fte = feats(s.train), feats(s.test)
        r = box_probe(ftr, s.train_boxes, fte, s.test_boxes, s.train.labels,
                      seed=ev.seed)
        r.update(n_train=len(s.train), n_test=len(s.test),
                 seconds=round(time.time() - t0, 2), protocol=self.protocol())
        if s.note:
          r['note'] = s.note
        results[f'{s.name}_boxes'] = r
      if ev.config.get('object_crops', False):
        t0 = time.time()
        if s.name not in self._crops:
          self._crops[s.name] = s.crops()
        train, test = self._crops[s.name]
        r = self._classify(train, test, feats(train), feats(test), ks)
        r.update(n_train=len(train), n_test=len(test),
                 seconds=round(time.time() - t0, 2),
                 protocol=dict(ev.protocol(ks), task='object_crops'))
        notes = [s.note] + sets_lib.meaningless(
            sets_lib.EvalSet(s.name, train, test), ks)
        if any(notes):
          r['note'] = '; '.join(n for n in notes if n)
        results[f'{s.name}_crops'] = r
    return results

  def _classify(self, train, test, ftr, fte, ks) -> Dict[str, object]:
    """kNN and linear probe as the Evaluator computes them on full images."""
    c, seed = self.ev.config, self.ev.seed
    num_classes = max(train.num_classes, test.num_classes)
    r = {f'knn@{k}': v for k, v in knn_lib.knn_accuracy(
        ftr, train.labels, fte, test.labels, num_classes, ks,
        c.knn_temperature).items()}
    if c.probe:
      probe = probe_lib.linear_probe(ftr, train.labels, fte, test.labels,
                                     num_classes, max_iter=c.probe_max_iter,
                                     seed=seed)
      r.update(probe=probe['top1'], probe_l2=probe['l2'],
               probe_iterations=probe['iterations'])
    return r


def protocol_text(p: Dict[str, object]) -> str:
  """One line naming a box-probe protocol (for eval.md)."""
  limits = '/'.join('all' if not v else str(v)
                    for v in (p['train_limit'], p['test_limit']))
  grid = p.get('l2_grid') or [0]
  return (f'box probe: {p["image_size"]} px, limits {limits}, '
          f'{p.get("head", "ridge")} λ {min(grid):g}…{max(grid):g} on a '
          f'{100 * p.get("holdout", HOLDOUT):g} % held-out part, seed '
          f'{p["seed"]}')
