"""Benchmarks of the foundation (`make bench`): each against a baseline of the same run."""
