"""Top-K Representation Invariance Score (Purushwalkam & Gupta, NeurIPS 2020).

How much a representation's neurons keep firing across a *transformation
set* — one object (or one video shot) seen under several transformations —
relative to how often they fire at all. Computed exactly as the authors'
released ``measure_invariances.py`` (senthilps8/demystifyssl @ 407f294;
``tests/test_invariance.py`` checks our function against numbers produced by
running their code, see ``launch/reference/ris_authors.py``):

* C = the number of distinct ``class_ids`` (every class, also one whose sets
  are all too small); p = min(100·(1 − 1/C), 95); idx = ⌊N·p / 100⌋.
* Per neuron i, over all N images: the positive threshold t⁺_i is the
  *ascending* sorted value at idx, the negative threshold t⁻_i the
  *descending* sorted value at idx. Global firing rate G(i) = fraction of
  images with f_i ≥ t⁺_i (positive sign only). G(i) ≥ 1/N always, since t⁺_i
  is one of the values.
* A set S with |S| ≥ 3 (smaller sets are skipped): the neuron fires
  positively on an image when f_i > t⁺_i and negatively when f_i < t⁻_i; the
  set's local rate is max(#positive, #negative) / |S|.
* L_c(i) = mean local rate over the sets of class c on which neuron i fired
  at least once, and 0 for a neuron that never fired in them (or for every
  neuron of a class without a set of 3); r_c(i) = L_c(i) / G(i); Top-K_c =
  (sum of the K largest r_c(i)) / K — zeros included, so a class with fewer
  than K firing neurons still divides by K; the score is the mean of Top-K_c
  over all C classes, × (100 − p).

Two inputs the authors' code has no number for: features with fewer than K
neurons (their ``cummeanscore[K - 1]`` raises IndexError) give NaN for that
K, and inputs without any set of 3 or more images give NaN (their code would
print 0.000, indistinguishable from a representation with no invariance).
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
    {K: score}; NaN for a K above D, and for every K when no set has 3 or
    more images.

  Raises:
    ValueError: the three arguments disagree in length, or a feature is not
      finite.
  """
  f = np.asarray(features, np.float64)
  set_ids = np.asarray(set_ids)
  class_ids = np.asarray(class_ids)
  n, d = f.shape
  if len(set_ids) != n or len(class_ids) != n:
    raise ValueError(f'features has {n} rows but set_ids has {len(set_ids)} '
                     f'and class_ids {len(class_ids)}; give one per image.')
  if not np.isfinite(f).all():
    raise ValueError('features hold NaN or inf values; the invariance score '
                     'needs finite features (check the encoder checkpoint).')
  classes = np.unique(class_ids)
  # The authors' expressions, operation for operation, so that the threshold
  # index agrees with theirs on every N.
  p = min((1.0 - 1.0 / len(classes)) * 100, 95)
  index = int((n * p) // 100)
  t_pos = np.sort(f, axis=0)[index]
  t_neg = -np.sort(-f, axis=0)[index]  # Descending order, as theirs.
  global_rate = np.mean(f >= t_pos, axis=0)  # [D], never 0 (see above).

  # Per class: sum and count of local rates over sets where the neuron fired.
  sums = np.zeros((len(classes), d))
  counts = np.zeros((len(classes), d))
  any_set = False
  for s in np.unique(set_ids):
    members = np.nonzero(set_ids == s)[0]
    if len(members) < 3:
      continue
    any_set = True
    c = np.searchsorted(classes, class_ids[members[0]])
    x = f[members]
    fired = np.maximum((x > t_pos).sum(0), (x < t_neg).sum(0))  # [D]
    on = fired > 0
    sums[c] += np.where(on, fired / len(members), 0.0)
    counts[c] += on
  if not any_set:
    return {k: float('nan') for k in ks}
  local = sums / (counts + 1e-20)  # 0 where a neuron never fired (theirs).
  ratio = -np.sort(-(local / global_rate), axis=1)  # [C, D], descending.
  top_mean = np.cumsum(ratio, axis=1) / np.arange(1, d + 1)  # Theirs.
  return {k: (float(np.mean(top_mean[:, k - 1])) * (100 - p)
              if k <= d else float('nan')) for k in ks}


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
