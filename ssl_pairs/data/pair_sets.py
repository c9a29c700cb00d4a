"""Pair sets: which two images form each positive pair, as index arrays.

A pair set is index-level: item ``i`` of an epoch maps to ``(anchor,
partner)`` indices into an :class:`~ssl_pairs.data.sources.ImageSource`. The
classes here hold only indices and tables handed to them — the mined ones
(GPS neighbours, SPPS positive sets) receive their tables from
:mod:`ssl_pairs.mining`, so this module knows no network. How the sets are
built from labels, files and videos: :mod:`ssl_pairs.data.pairs`.
"""

import dataclasses
from typing import Optional

import numpy as np


@dataclasses.dataclass
class PairSet:
  """A fixed list of (anchor, partner) image indices, optionally resampled.

  Attributes:
    anchors: int64 [P] image indices.
    partners: int64 [P] image indices (== anchors for augmented pairs).
    labels: int64 [N] class of every image of the source (used only to redraw
      partners when ``resample_partner``).
    resample_partner: redraw each partner every epoch from the anchor's class.
    seed: seed of the redraws.
    augment_self_pairs: whether a pair of one image with itself is an
      augmented pair, whose partner gets the pair transform (see the module
      docstring; False for the mined and temporal sources).
  """
  anchors: np.ndarray
  partners: np.ndarray
  labels: Optional[np.ndarray] = None
  resample_partner: bool = False
  seed: int = 0
  augment_self_pairs: bool = True

  def __post_init__(self):
    self.anchors = np.asarray(self.anchors, np.int64)
    self.partners = np.asarray(self.partners, np.int64)
    if self.resample_partner:
      order = np.argsort(self.labels, kind='stable')
      sorted_labels = self.labels[order]
      self._class_members = order
      self._class_start = np.searchsorted(sorted_labels, self.labels,
                                          side='left')
      self._class_count = (np.searchsorted(sorted_labels, self.labels,
                                           side='right') - self._class_start)

  def __len__(self) -> int:
    return len(self.anchors)

  def pair(self, item: int, epoch: int):
    """(anchor, partner) image indices of pair ``item`` in ``epoch``."""
    anchor = int(self.anchors[item])
    if not self.resample_partner:
      return anchor, int(self.partners[item])
    rng = np.random.default_rng([self.seed, epoch, item, 0x9A1])
    start, count = self._class_start[anchor], self._class_count[anchor]
    # Uniform over the other members of the class: draw from count-1 slots
    # and skip the anchor's own slot.
    slot = int(rng.integers(count - 1))
    own = int(np.nonzero(self._class_members[start:start + count] == anchor)[0][0])
    if slot >= own:
      slot += 1
    return anchor, int(self._class_members[start + slot])

  @property
  def is_augmented(self) -> np.ndarray:
    """bool [P]: pairs whose two images are the same image."""
    return self.anchors == self.partners


@dataclasses.dataclass
class NeighbourPairSet(PairSet):
  """GPS-SSL pairs: each image's partner is drawn from its k neighbours.

  Attributes:
    neighbours: int64 [N, k] neighbour table (row i: image i's neighbours in
      the prior embedding). Every draw picks one uniformly, deterministically
      per (seed, epoch, item).
    refresh_epochs: R > 0 replaces the table every R epochs (generation
      g = epoch // R) by one from the current model, installed by the
      training loop with :meth:`install`; 0 keeps the prior's table.
  """
  neighbours: Optional[np.ndarray] = None
  refresh_epochs: int = 0
  tables: dict = dataclasses.field(default_factory=dict)
  augment_self_pairs: bool = False  # A self-neighbour is not an augmented pair.

  def __post_init__(self):
    super().__post_init__()
    self.tables.setdefault(0, self.neighbours)

  def generation(self, epoch: int) -> int:
    return epoch // self.refresh_epochs if self.refresh_epochs else 0

  def install(self, generation: int, table: np.ndarray) -> None:
    self.tables[generation] = np.asarray(table, np.int64)

  def table(self, generation: int) -> np.ndarray:
    """The table of a generation; a later one not yet installed reads the
    newest (only prefetched batches the loop discards ever ask for it)."""
    if generation in self.tables:
      return self.tables[generation]
    return self.tables[max(g for g in self.tables if g <= generation)]

  def pair(self, item: int, epoch: int):
    anchor = int(self.anchors[item])
    row = self.table(self.generation(epoch))[anchor]
    rng = np.random.default_rng([self.seed, epoch, item, 0x6B5])
    return anchor, int(row[rng.integers(len(row))])

  def precision(self, labels: np.ndarray, generation: int = 0) -> float:
    """Fraction of (image, neighbour) entries that share a label."""
    table = self.table(generation)
    return float(np.mean(labels[table] == labels[:len(table), None]))


@dataclasses.dataclass
class PositiveSetPairs(PairSet):
  """SPPS: each image is an augmented pair plus its semantic positive set.

  Attributes:
    positives: int64 [N, P] candidate positives of every image (its P nearest
      neighbours in the prior embedding, most similar first).
    positive_mask: bool [N, P], which candidates are in the set (similarity
      at least the threshold). A row with no True falls back to the plain pair.
  """
  positives: Optional[np.ndarray] = None
  positive_mask: Optional[np.ndarray] = None
  augment_self_pairs: bool = False  # SPPS pairs are plain two-view pairs.

  def positive_set(self, anchor: int):
    """(indices int64 [P], mask bool [P]) of an image's semantic positives."""
    return self.positives[anchor], self.positive_mask[anchor]

  def precision(self, labels: np.ndarray) -> float:
    """Fraction of (image, set member) entries that share a label."""
    same = labels[self.positives] == labels[:len(self.positives), None]
    n = self.positive_mask.sum()
    return float((same & self.positive_mask).sum() / n) if n else float('nan')

  def set_sizes(self) -> np.ndarray:
    return self.positive_mask.sum(axis=1)
