"""grain input pipeline: source → pairs → seeded views → batches → device.

The stream is an infinite sequence of *global positions*; position ``p`` is pair
``order[p]`` of epoch ``p // len(pairs)``, where ``order`` is grain's per-epoch
shuffle. Each process reads the rows of every global batch that belong to it,
so any number of processes see together exactly the global batch one process
would see (the multi-host contract). The two views of a pair are drawn from a
numpy Generator seeded with (seed, epoch, pair), so they depend on neither the
batch composition nor the number of threads: same seed ⇒ same pairs, same crops.

Batches are uint8 (4× less to copy than float32); normalisation happens on the
device inside the jitted step (:func:`ssl_pairs.images.normalize_images`).
"""

import dataclasses
import sys
from typing import Iterator, Optional

import grain
import jax
import numpy as np

from ssl_pairs.data import augment
from ssl_pairs.data.pair_sets import PairSet
from ssl_pairs.data.sources import ImageSource
from ssl_pairs.errors import UserError

@dataclasses.dataclass
class PairViews:
  """Maps a global position to one training record (two views of a pair).

  Calling it is a pure function of the position: the epoch, the pair and every
  random draw are derived from (seed, epoch, pair index).
  """
  source: ImageSource
  pairs: PairSet
  order: grain.MapDataset
  specs: tuple
  pair_spec: Optional[augment.ViewSpec]
  image_size: int
  seed: int
  local: tuple = (0, 0, None)  # (number, size, spec) of multi-crop views.
  # augment_on=device: records carry the raw images and the views are made
  # in the train step (:mod:`device_augment`).
  on_device: bool = False

  def _raw_shape(self):
    """Shape every raw image must have: that of pair 0's anchor image."""
    if not hasattr(self, '_shape'):
      anchor, partner = self.pairs.pair(0, 0)
      if hasattr(self.pairs, 'pair_images'):
        image = self.pairs.pair_images(self.source, anchor, partner,
                                       np.random.default_rng(0))[0]
      else:
        image = self.source[anchor]
      self._shape = image.shape  # pylint: disable=attribute-defined-outside-init
    return self._shape

  def _augmented(self, anchor, partner) -> bool:
    """Whether the partner gets the pair transform: a pair of one image with
    itself, in a pair set whose self-pairs are augmented pairs (the
    ``augmented`` source and pair files; :mod:`ssl_pairs.data.pairs`)."""
    return (anchor == partner and self.pair_spec is not None and
            self.pairs.augment_self_pairs)

  def _raw_record(self, epoch, item, anchor, partner, image_a, image_b):
    """Device augmentation: the pair's uint8 images and its view seed."""
    shapes = {image_a.shape, image_b.shape, self._raw_shape()}
    if len(shapes) > 1:
      raise UserError(
          'data.augment_on=device needs images of one size, got '
          f'{" and ".join(str(s) for s in sorted(shapes))}; set '
          'data.load_size to a size (0 = image_size) or use '
          'data.augment_on=host.')
    augmented = self._augmented(anchor, partner)
    if augmented and image_b.shape[0] != image_b.shape[1]:
      raise UserError(
          'data.augment_on=device makes augmented pairs from square images '
          f'only, got {image_b.shape[:2]}; set data.load_size=0 (square '
          'images of image_size), data.pair_transform=none or '
          'data.augment_on=host.')
    record = {'view1': image_a, 'view2': image_b,
              'aug_seed': np.asarray([epoch, item], np.int32),
              'same': np.bool_(augmented),
              'label': np.int32(self.source.labels[anchor]),
              'index': np.int32(anchor), 'partner': np.int32(partner)}
    if hasattr(self.pairs, 'positive_set'):
      members, mask = self.pairs.positive_set(anchor)
      record['positives'] = np.stack([
          self.source[int(j)] if m else image_a for j, m in zip(members, mask)])
      record['positive_mask'] = np.asarray(mask, bool)
    return record

  def __call__(self, position: int):
    epoch = position // len(self.pairs)
    item = int(self.order[position])
    anchor, partner = self.pairs.pair(item, epoch)
    rng = np.random.default_rng([self.seed, epoch, item])
    if hasattr(self.pairs, 'pair_images'):  # E.g. tracked video regions.
      image_a, image_b = self.pairs.pair_images(self.source, anchor, partner,
                                                rng)
    else:
      image_a, image_b = self.source[anchor], self.source[partner]
    if self.on_device:
      return self._raw_record(epoch, item, anchor, partner, image_a, image_b)
    if self._augmented(anchor, partner):
      image_b = augment.apply_view(image_b, rng, self.pair_spec,
                                   image_b.shape[0])
    record = {
        'view1': augment.apply_view(image_a, rng, self.specs[0],
                                    self.image_size),
        'view2': augment.apply_view(image_b, rng, self.specs[1],
                                    self.image_size),
        'label': np.int32(self.source.labels[anchor]),
        'index': np.int32(anchor),
        'partner': np.int32(partner),
    }
    n_local, local_size, local_spec = self.local
    if n_local:
      # Local crop i comes from the anchor for even i, the partner for odd i.
      record['local'] = np.stack([
          augment.apply_view(image_a if i % 2 == 0 else image_b, rng,
                             local_spec, local_size)
          for i in range(n_local)])
    if hasattr(self.pairs, 'positive_set'):
      # SPPS: a view of every member of the anchor's semantic positive set;
      # an empty slot holds another view of the anchor (so BatchNorm only
      # sees real images) and is masked out of the loss.
      members, mask = self.pairs.positive_set(anchor)
      record['positives'] = np.stack([
          augment.apply_view(self.source[int(j)] if m else image_a, rng,
                             self.specs[1], self.image_size)
          for j, m in zip(members, mask)])
      record['positive_mask'] = np.asarray(mask, bool)
    return record


def train_batches(source: ImageSource, pairs: PairSet, data_config,
                  global_batch: int, seed: int, process_index: int = 0,
                  process_count: int = 1) -> grain.MapDataset:
  """An infinite MapDataset of this process's batches (element k = step k).

  Args:
    source: images.
    pairs: the pair set (one epoch = len(pairs) pairs).
    data_config: ``config.data`` (augment, pair_transform, image_size).
    global_batch: pairs per step over all processes.
    seed: data seed (shuffle order and views).
    process_index, process_count: this process's slice of each global batch.

  Returns:
    MapDataset whose element k is a dict of numpy arrays with leading
    dimension ``global_batch // process_count``: 'view1', 'view2' (uint8
    [b, S, S, 3]), 'label' and 'index' (int32 [b], the anchor's), 'partner'
    (int32 [b], the partner's image index; diagnostics and tests), with
    multi-crop 'local' (uint8 [b, N, s, s, 3]), and with SPPS 'positives'
    (uint8 [b, P, S, S, 3]) and 'positive_mask' (bool [b, P]). With
    ``data_config.augment_on='device'`` the view keys hold the raw images
    (uint8 [b, H, W, 3], SPPS 'positives' [b, P, H, W, 3]) plus 'aug_seed'
    (int32 [b, 2]) and 'same' (bool [b]), for :mod:`device_augment`.
  """
  if len(pairs) < global_batch:
    raise UserError(f'The batch size {global_batch} is larger than the '
                    f'{len(pairs)} pairs in the data; lower batch_size or use '
                    'more data.')
  if global_batch % process_count:
    raise UserError(f'batch_size {global_batch} is not divisible by the '
                    f'{process_count} processes; make it a multiple.')
  local = global_batch // process_count
  order = grain.MapDataset.range(len(pairs)).shuffle(seed=seed).repeat()
  views = PairViews(
      source=source, pairs=pairs, order=order,
      specs=augment.view_specs(data_config.augment, data_config.image_size),
      pair_spec=augment.pair_transform_spec(data_config.pair_transform,
                                            data_config.augment.drop),
      image_size=data_config.image_size, seed=seed,
      local=augment.local_crop_spec(data_config.augment,
                                    data_config.image_size),
      on_device=data_config.get('augment_on', 'host') == 'device')

  def global_position(j):
    step, row = divmod(j, local)
    return step * global_batch + process_index * local + row

  return (grain.MapDataset.range(0, sys.maxsize)
          .map(lambda j: views(global_position(j)))
          .batch(local, drop_remainder=True))


class DeviceIterator:
  """Iterates batches onto the devices, ``depth`` steps ahead.

  grain's own prefetching: the batches of ``batches`` (made by
  ``num_threads`` grain threads, ``prefetch`` ahead) are put on the mesh
  with ``jax.make_array_from_process_local_data`` in a grain prefetch thread
  (``ThreadPrefetchIterDataset``, ``depth`` device batches ahead), so the
  copy of batch k+1 overlaps step k. That iterator keeps its state per
  element: ``state()`` is the position *after the last batch handed out*,
  not after the prefetched ones — what a checkpoint must store to resume at
  the right batch (tests: bitwise resume, per-process slices). (grain's
  ``experimental.device_put`` is the same two stages, but with
  ``jax.device_put``, which cannot assemble a global batch from each
  process's rows on several hosts.)
  """

  def __init__(self, batches: grain.MapDataset, sharding,
               start_state: Optional[dict] = None, num_threads: int = 2,
               prefetch: int = 4, depth: int = 2):
    opts = grain.ReadOptions(num_threads=num_threads,
                             prefetch_buffer_size=prefetch)

    def to_devices(local):
      return jax.tree.map(
          lambda x: jax.make_array_from_process_local_data(sharding, x),
          local)

    self._it = iter(grain.experimental.ThreadPrefetchIterDataset(
        batches.to_iter_dataset(opts).map(to_devices),
        prefetch_buffer_size=depth))
    if start_state:
      self._it.set_state(start_state)

  def __iter__(self) -> Iterator:
    return self

  def __next__(self):
    return next(self._it)

  def state(self) -> dict:
    """grain iterator state positioned after the last returned batch."""
    return dict(self._it.get_state())

  def close(self) -> None:
    """Stops the prefetch threads (of a replaced or finished iterator)."""
    self._it.close()
