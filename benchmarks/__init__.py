"""Benchmarks of the relay bot: `python -m benchmarks` runs them all and prints their numbers (see README.md)."""
