"""GPS-SSL's neighbour refresh: the table rebuilt with the current encoder."""

import os
import time

import jax
import numpy as np

from ssl_pairs import metrics as metrics_lib
from ssl_pairs.evals import features as features_lib
from ssl_pairs.mining import neighbours as nn_lib
from ssl_pairs.mining import priors
from ssl_pairs.models import get_backbone
from ssl_pairs.state import encoder_variables


class NeighbourRefresh:
  """GPS-SSL's optional refresh: re-embed with the current model every R epochs.

  Before step s runs, the generation its last pair belongs to must have its
  table. A missing one is built from the current encoder (exact kNN on
  un-augmented images), saved as ``workdir/gps_neighbours_g<g>.npy`` (so a
  resumed run reads it back instead of recomputing) and installed; the loop
  then restarts its data iterator at the same position so no batch
  prefetched with the old table is used.
  """

  def __init__(self, config, source, pair_set, workdir):
    self.config, self.source, self.pairs = config, source, pair_set
    self.workdir = workdir
    self._features = self._images = None
    for g in range(1, 1 << 20):
      path = self._path(g)
      if not os.path.exists(path):
        break
      pair_set.install(g, np.load(path))

  def _path(self, generation):
    return os.path.join(self.workdir, f'gps_neighbours_g{generation}.npy')

  def generation_of_step(self, step: int) -> int:
    last_position = step * self.config.batch_size - 1
    return self.pairs.generation(last_position // len(self.pairs))

  def ensure(self, step: int, state) -> bool:
    """Builds the table step ``step`` needs; True when one was built."""
    g = self.generation_of_step(step)
    if g in self.pairs.tables:
      return False
    t0 = time.time()
    if self._features is None:  # Built once, reused by every refresh.
      self._features = features_lib.encoder_features_fn(
          get_backbone(self.config.model)[0])
      self._images = priors.all_images(
          self.source, self.config.data.image_size)
    features = self._features(encoder_variables(state), self._images)
    gps = self.config.data.gps
    table, _ = nn_lib.nearest_neighbours(features, gps.k, gps.metric,
                                         include_self=gps.include_self)
    previous = self.pairs.table(g - 1)
    changed = np.mean(np.sort(table, 1) != np.sort(previous, 1))
    if jax.process_index() == 0:
      path = self._path(g)
      np.save(path + '.tmp.npy', table)
      os.replace(path + '.tmp.npy', path)
    self.pairs.install(g, table)
    metrics_lib.say(
        f'Refreshed the GPS neighbours with the current encoder before step '
        f'{step} (generation {g}, {time.time() - t0:.1f} s): {100 * changed:.1f}'
        f' % of entries changed; pair precision (same label, diagnostic) '
        f'{100 * self.pairs.precision(self.source.labels, g):.1f} %.')
    return True
