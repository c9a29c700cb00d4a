"""Evaluations of frozen encoders: kNN, linear probe, and the report."""
