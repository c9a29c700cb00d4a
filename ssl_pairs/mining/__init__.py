"""Mining: positive pairs found by a network or an embedding, not by labels.

Prior embeddings (:mod:`priors`: pixels/PCA, autoencoder, checkpoint, npy),
nearest neighbours (:mod:`neighbours`), the GPS and SPPS pair sets built from
them (:mod:`tables`) and GPS's refresh with the current encoder
(:mod:`refresh`). This layer sits above data and models: it may import
``ssl_pairs.data``, ``models``, ``evals`` and ``checkpoint``; ``ssl_pairs.data``
imports none of them and receives neighbour tables as arrays.
"""
