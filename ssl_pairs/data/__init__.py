"""Data: sources (images), pairs (which images pair up), augment (views), pipeline (grain)."""
