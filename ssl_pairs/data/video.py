"""Temporal positive pairs from video: nearby frames of one shot.

A video is any image source whose items are frames in time order: an npz
with ``images``/``labels`` (``labels`` = the clip, as the ``video_*.npz``
files of the data dir), or an image folder ``root/<clip>/<frame>.png`` (frames
sorted by file name). Frames of different clips are never paired.

* **Shots**: a cut is where the mean absolute difference between consecutive
  frames exceeds ``cut_threshold`` × the median difference of the 8 frames on
  either side (a hard cut stands alone; fast motion raises its neighbours
  too — on ``video_bikes.npz`` the 5 cuts score ≥ 3.7, everything else ≤ 2.1),
  or the shot starts are given
  (``data.temporal.shot_starts='0,30,76'``, frame indices of the source).
* **Pairs**: frame i is paired with frame i ± gap of its shot, the gap drawn
  uniformly from [min_gap, max_gap] at every draw (deterministic per
  seed/epoch/item; forward when the shot allows, else backward).
* **Region tracker** (``tracker=True``): a random square region of frame i
  (side ``region_fraction`` × the frame side) is followed into the partner
  frame by normalised cross-correlation within ± ``search_radius`` px; the
  two crops are the pair's images, so the pair is the *same object region*
  seen at two times rather than two whole frames.
"""

import dataclasses
from typing import Optional, Tuple

import numpy as np

from ssl_pairs.data.pair_sets import PairSet
from ssl_pairs.errors import UserError


def frame_differences(frames: np.ndarray) -> np.ndarray:
  """float [T-1]: mean absolute difference between consecutive frames."""
  f = frames.astype(np.float32)
  return np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3))


def detect_shots(frames: np.ndarray, cut_threshold: float = 3.0,
                 window: int = 8) -> np.ndarray:
  """int64 shot starts (0 first) of one clip's frames [T, H, W, 3].

  A cut is a frame difference above ``cut_threshold`` × the median of the
  ``window`` differences on each side of it: fast motion raises the
  neighbours too, a hard cut stands alone.
  """
  if len(frames) < 3:
    return np.zeros(1, np.int64)
  diffs = frame_differences(frames)
  cuts = []
  for t, d in enumerate(diffs):
    around = np.concatenate([diffs[max(0, t - window):t],
                             diffs[t + 1:t + 1 + window]])
    if d > cut_threshold * max(float(np.median(around)), 1e-6):
      cuts.append(t + 1)
  return np.asarray([0] + cuts, np.int64)


def shot_ids(source, shot_starts: str = '', cut_threshold: float = 3.0
             ) -> np.ndarray:
  """int64 [N]: the shot of every frame (clips never share a shot)."""
  n = len(source)
  clip_starts = np.concatenate(
      [[0], np.nonzero(np.diff(source.labels))[0] + 1]).astype(np.int64)
  if shot_starts:
    try:
      given = sorted({int(t) for t in shot_starts.split(',') if t.strip()})
    except ValueError as e:
      raise UserError(f'data.temporal.shot_starts={shot_starts!r} must be '
                      'comma-separated frame indices, e.g. "0,30,76".') from e
    if given and (given[0] < 0 or given[-1] >= n):
      raise UserError(f'data.temporal.shot_starts names frame {given[-1]} '
                      f'but the video has frames 0..{n - 1}.')
    starts = np.asarray(given, np.int64)
  else:
    bounds = list(clip_starts) + [n]
    starts = np.concatenate([
        a + detect_shots(source.gather(np.arange(a, b)), cut_threshold)
        for a, b in zip(bounds[:-1], bounds[1:])])
  starts = np.union1d(np.union1d(starts, clip_starts), [0])
  ids = np.zeros(n, np.int64)
  ids[starts[starts < n]] = 1
  return np.cumsum(ids) - 1


def track_region(frame_a: np.ndarray, frame_b: np.ndarray,
                 box: Tuple[int, int, int], radius: int) -> Tuple[int, int]:
  """(top, left) in frame_b of the region ``box`` = (top, left, side) of a.

  Exhaustive normalised cross-correlation of the grey template over every
  offset within ± ``radius`` px (clipped to the frame); the best offset wins.
  """
  top, left, side = box
  grey_a = frame_a.astype(np.float32).mean(-1)
  grey_b = frame_b.astype(np.float32).mean(-1)
  template = grey_a[top:top + side, left:left + side]
  t = template - template.mean()
  t_norm = np.sqrt((t * t).sum()) + 1e-6
  h, w = grey_b.shape
  y0, y1 = max(0, top - radius), min(h - side, top + radius)
  x0, x1 = max(0, left - radius), min(w - side, left + radius)
  window = grey_b[y0:y1 + side, x0:x1 + side]
  patches = np.lib.stride_tricks.sliding_window_view(window, (side, side))
  centred = patches - patches.mean(axis=(2, 3), keepdims=True)
  num = np.einsum('yxij,ij->yx', centred, t)
  den = np.sqrt((centred * centred).sum(axis=(2, 3))) * t_norm + 1e-6
  score = num / den
  # Ties (flat regions) go to the smallest displacement.
  dy, dx = np.mgrid[y0:y1 + 1, x0:x1 + 1]
  score = score - 1e-6 * (np.abs(dy - top) + np.abs(dx - left))
  best = np.unravel_index(np.argmax(score), score.shape)
  return int(y0 + best[0]), int(x0 + best[1])


@dataclasses.dataclass
class TemporalPairSet(PairSet):
  """Frame i paired with a frame of its shot min_gap..max_gap away.

  Attributes:
    shots: int64 [N] shot of every frame (consecutive frames of a shot).
    min_gap, max_gap: range of the frame gap drawn at every draw.
    tracker: pair tracked regions instead of whole frames.
    region_fraction: tracked region side as a fraction of the frame side.
    search_radius: tracker search range in px.
  """
  shots: Optional[np.ndarray] = None
  min_gap: int = 1
  max_gap: int = 4
  tracker: bool = False
  region_fraction: float = 0.5
  search_radius: int = 8
  augment_self_pairs: bool = False  # A one-frame shot is no augmented pair.

  def __post_init__(self):
    super().__post_init__()
    n = len(self.shots)
    starts = np.concatenate([[0], np.nonzero(np.diff(self.shots))[0] + 1])
    ends = np.concatenate([starts[1:], [n]])
    self._shot_start = starts[self.shots]
    self._shot_end = ends[self.shots]  # Exclusive.

  def pair(self, item: int, epoch: int):
    anchor = int(self.anchors[item])
    start, end = self._shot_start[anchor], self._shot_end[anchor]
    rng = np.random.default_rng([self.seed, epoch, item, 0x7E3])
    gap = int(rng.integers(self.min_gap, self.max_gap + 1))
    gap = min(gap, end - 1 - start)  # A short shot caps the gap.
    if anchor + gap < end:
      return anchor, anchor + gap
    return anchor, max(start, anchor - gap)

  def pair_images(self, source, anchor: int, partner: int,
                  rng: np.random.Generator):
    """The pair's two images: whole frames, or the tracked region of each."""
    frame_a, frame_b = source[anchor], source[partner]
    if not self.tracker:
      return frame_a, frame_b
    h, w = frame_a.shape[:2]
    side = max(4, int(round(self.region_fraction * min(h, w))))
    top = int(rng.integers(0, h - side + 1))
    left = int(rng.integers(0, w - side + 1))
    if anchor == partner:
      y, x = top, left
    else:
      y, x = track_region(frame_a, frame_b, (top, left, side),
                          self.search_radius)
    return (frame_a[top:top + side, left:left + side],
            frame_b[y:y + side, x:x + side])

  def shot_summary(self) -> str:
    lengths = np.bincount(self.shots)
    return (f'{len(lengths)} shot(s) of {lengths.min()}–{lengths.max()} '
            'frames')


def temporal_pair_set(data_config, source) -> TemporalPairSet:
  """The ``temporal`` pair source over a video source (no labels used)."""
  t = data_config.temporal
  if not 1 <= t.min_gap <= t.max_gap:
    raise UserError(f'data.temporal needs 1 <= min_gap <= max_gap, got '
                    f'min_gap={t.min_gap}, max_gap={t.max_gap}.')
  if not 0 < t.region_fraction <= 1:
    raise UserError(f'data.temporal.region_fraction={t.region_fraction} must '
                    'lie in (0, 1].')
  if t.search_radius < 0:
    raise UserError(f'data.temporal.search_radius={t.search_radius} must not '
                    'be negative.')
  shots = shot_ids(source, t.shot_starts, t.cut_threshold)
  everyone = np.arange(len(source), dtype=np.int64)
  return TemporalPairSet(everyone, everyone.copy(), seed=data_config.pair_seed,
                         shots=shots, min_gap=t.min_gap, max_gap=t.max_gap,
                         tracker=t.tracker,
                         region_fraction=t.region_fraction,
                         search_radius=t.search_radius)

