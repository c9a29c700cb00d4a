"""Launch programs: studies, reproductions, benchmarks and cluster scripts.

Each ``launch/<name>.py`` runs as ``python launch/<name>.py`` from a checkout
with the package installed (``pip install -e .``), or as
``python -m launch.<name>``; ``ssl-pairs reproduce`` runs ``reproduce.py``.
"""
