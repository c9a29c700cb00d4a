"""Top-K Representation Invariance Score (Purushwalkam & Gupta, NeurIPS 2020).

How much a representation's neurons keep firing across a *transformation
set* — one object (or one video shot) seen under several transformations —
relative to how often they fire at all. Computed as METHODS.md §1 describes
the authors' ``measure_invariances.py``:

* C = the number of distinct ``class_ids``; p = min(100·(1 − 1/C), 95).
* Per neuron i, over all N images: the positive threshold t⁺_i is the sorted
  value at index ⌊N·p/100⌋, the negative threshold t⁻_i the sorted value at
  index ⌊N·(100 − p)/100⌋. Global firing rate G(i) = fraction of images with
  f_i ≥ t⁺_i (positive sign only).
* A set S with |S| ≥ 3 (smaller sets are skipped): the neuron fires
  positively on an image when f_i > t⁺_i and negatively when f_i < t⁻_i; the
  set's local rate is max(#positive, #negative) / |S|.
* L_c(i) = mean local rate over the sets of class c on which neuron i fired
  at least once; r_c(i) = L_c(i) / G(i); Top-K_c = mean of the K largest
  r_c(i); the score is the mean over classes of Top-K_c, × (100 − p).
"""

from typing import Dict, Sequence

import numpy as np


def topk_invariance_score(features, set_ids, class_ids,
                          ks: Sequence[int] = (10, 25)) -> Dict[int, float]:
  """{K: score} for features [N, D] grouped into sets with classes.

  Args:
    features: [N, D] representation of every image (e.g. pooled backbone).
    set_ids: [N] transformation-set id of every image.
    class_ids: [N] class of every image (a set's images share one class; for
      video viewpoint sets, the shot).
    ks: the K of Top-K.

  Returns:
    {K: score}; NaN for a K when no set has 3 or more images.
  """
  f = np.asarray(features, np.float64)
  set_ids = np.asarray(set_ids)
  class_ids = np.asarray(class_ids)
  n, d = f.shape
  if len(set_ids) != n or len(class_ids) != n:
    raise ValueError(f'features has {n} rows but set_ids has {len(set_ids)} '
                     f'and class_ids {len(class_ids)}; give one per image.')
  num_classes = len(np.unique(class_ids))
  p = min(100.0 * (1.0 - 1.0 / num_classes), 95.0)
  ordered = np.sort(f, axis=0)
  t_pos = ordered[min(int(np.floor(n * p / 100.0)), n - 1)]
  t_neg = ordered[min(int(np.floor(n * (100.0 - p) / 100.0)), n - 1)]
  global_rate = np.mean(f >= t_pos, axis=0)  # [D]

  # Per class: sum and count of local rates over sets where the neuron fired.
  sums, counts = {}, {}
  for s in np.unique(set_ids):
    members = np.nonzero(set_ids == s)[0]
    if len(members) < 3:
      continue
    c = class_ids[members[0]]
    x = f[members]
    fired = np.maximum((x > t_pos).sum(0), (x < t_neg).sum(0))  # [D]
    local = fired / len(members)
    on = fired > 0
    sums.setdefault(c, np.zeros(d))
    counts.setdefault(c, np.zeros(d))
    sums[c] += np.where(on, local, 0.0)
    counts[c] += on
  if not sums:
    return {k: float('nan') for k in ks}
  scores = {}
  for k in ks:
    per_class = []
    for c in sums:
      valid = (counts[c] > 0) & (global_rate > 0)
      if not valid.any():
        continue
      ratio = (sums[c][valid] / counts[c][valid]) / global_rate[valid]
      top = np.sort(ratio)[::-1][:k]
      per_class.append(top.mean())
    scores[k] = (float(np.mean(per_class)) * (100.0 - p) if per_class
                 else float('nan'))
  return scores


def viewpoint_sets(shots, window: int = 5):
  """(set_ids, class_ids) for video frames: consecutive windows of ``window``
  frames of one shot form a set (real camera/object motion), the class is the
  shot; a shot's last window may be shorter (and is skipped if under 3)."""
  shots = np.asarray(shots)
  set_ids = np.empty(len(shots), np.int64)
  next_id = 0
  for s in np.unique(shots):
    frames = np.nonzero(shots == s)[0]
    set_ids[frames] = next_id + np.arange(len(frames)) // window
    next_id = set_ids[frames].max() + 1
  return set_ids, shots.copy()


def instance_viewpoint_sets(clips, per_set: int = 5):
  """(set_ids, class_ids) for video frames: each set is ``per_set`` frames
  spread evenly over one whole clip (stride = clip length // per_set; set o
  holds frames o, o + stride, …), the class is the clip.

  Viewpoint sets stay inside one shot; these span the clip, so across a cut
  the objects in view change as well as the camera (the bikes clip's six shots
  show other riders from other positions: instance + viewpoint). A one-shot
  clip (carphone) changes only pose and viewpoint across its sets. Frames left
  over (length % per_set) form sets of one, which the score skips.
  """
  clips = np.asarray(clips)
  set_ids = np.empty(len(clips), np.int64)
  next_id = 0
  for c in np.unique(clips):
    frames = np.nonzero(clips == c)[0]
    stride = len(frames) // per_set  # 0: too short, every frame alone.
    pos = np.arange(len(frames))
    full = pos < stride * per_set
    set_ids[frames[full]] = next_id + pos[full] % max(stride, 1)
    set_ids[frames[~full]] = next_id + stride + np.arange((~full).sum())
    next_id = set_ids[frames].max() + 1
  return set_ids, clips.copy()
