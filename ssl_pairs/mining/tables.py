"""The mined pair sets: GPS neighbours and SPPS positive sets from a prior.

:func:`build_pair_set` builds any ``config.data.pairs`` source: the mined ones
here (prior embedding → nearest neighbours → a table handed to the pair set),
every other one by :func:`ssl_pairs.data.pairs.build_pair_set`.
"""

from typing import Optional

import numpy as np

from ssl_pairs.data import pairs as pairs_lib
from ssl_pairs.data.pair_sets import (NeighbourPairSet, PairSet,
                                      PositiveSetPairs)
from ssl_pairs.errors import UserError
from ssl_pairs.mining import neighbours as nn_lib
from ssl_pairs.mining import priors


def build_pair_set(data_config, source, model_config=None,
                   cache_dir: Optional[str] = None) -> PairSet:
  """The pair set named by ``data_config.pairs`` over ``source``.

  ``model_config`` and ``cache_dir`` (the workdir, where prior embeddings are
  cached) are used by the mined pair sources only.
  """
  if data_config.pairs == 'gps':
    return gps_pair_set(data_config, source, model_config, cache_dir)
  if data_config.pairs == 'spps':
    return spps_pair_set(data_config, source, model_config, cache_dir)
  return pairs_lib.build_pair_set(data_config, source)


def prior_neighbours(prior_config, source, model_config, seed, cache_dir, k,
                      include_self=False):
  """(table [N, k], values [N, k]) of neighbours in a (cached) prior."""
  embedding = priors.cached_prior(prior_config.prior, source, prior_config,
                                  model_config, seed, cache_dir)
  return nn_lib.nearest_neighbours(embedding, k, prior_config.metric,
                                   include_self=include_self)


def spps_pair_set(data_config, source, model_config=None,
                  cache_dir: Optional[str] = None) -> PositiveSetPairs:
  """SPPS pairs: neighbours with similarity ≥ δ (at most k), no labels used."""
  spps = data_config.spps
  if spps.max_positives < 1:
    raise UserError(f'data.spps.max_positives={spps.max_positives} must be at '
                    'least 1.')
  table, values = prior_neighbours(spps, source, model_config,
                                    data_config.pair_seed, cache_dir,
                                    spps.max_positives)
  if spps.metric == 'cosine':
    mask = values >= spps.threshold
  else:  # Squared L2: the threshold is a largest distance.
    mask = values <= spps.threshold
  everyone = np.arange(len(source), dtype=np.int64)
  return PositiveSetPairs(everyone, everyone.copy(), seed=data_config.pair_seed,
                          positives=table, positive_mask=mask)


def gps_pair_set(data_config, source, model_config=None,
                 cache_dir: Optional[str] = None) -> NeighbourPairSet:
  """The GPS-SSL pair set: neighbours in a prior embedding (no labels used)."""
  gps = data_config.gps
  if gps.k < 1:
    raise UserError(f'data.gps.k={gps.k} must be at least 1.')
  table, _ = prior_neighbours(gps, source, model_config,
                               data_config.pair_seed, cache_dir, gps.k,
                               gps.include_self)
  everyone = np.arange(len(source), dtype=np.int64)
  if gps.refresh_epochs < 0:
    raise UserError(f'data.gps.refresh_epochs={gps.refresh_epochs} must be 0 '
                    '(never) or a number of epochs.')
  return NeighbourPairSet(everyone, everyone.copy(), seed=data_config.pair_seed,
                          neighbours=table, refresh_epochs=gps.refresh_epochs)
