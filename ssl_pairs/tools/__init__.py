"""Command-line tools (``python -m ssl_pairs.tools.<name>``)."""
