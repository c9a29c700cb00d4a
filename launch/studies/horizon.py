"""Does the semantic-pair gap close with training? The ``pairs`` study for
48 epochs (6× its budget; the cosine schedule over all 48, so a new run, not
a resumed 8-epoch one), the frozen encoder evaluated every 8 epochs from
epoch 0. Each arm takes about 2.5 h of two CPU cores and resumes exactly
when killed; a finished arm leaves its record, learning curve included, in
docs/results/horizon/runs.
"""

from launch.studies import pairs

STUDY = pairs.make(
    'horizon', 'SimCLR PS vs PA for 48 epochs, evaluated every 8 (the long '
    'curve)', '# Does the semantic-pair gap close? SimCLR PS vs PA over 48 '
    'epochs', epochs=48.0, every=8.0, workdir='runs/horizon',
    out='docs/results/horizon')
