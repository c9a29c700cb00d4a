"""ssl_pairs: self-supervised learning where the positive pair is the object of study.

Public entry points: :mod:`ssl_pairs.losses` (pure loss functions),
:func:`ssl_pairs.train.run` (train + evaluate a config), and
:func:`ssl_pairs.evals.run.evaluate_workdir` (evaluate a checkpoint).
"""

__version__ = '0.1.0'
