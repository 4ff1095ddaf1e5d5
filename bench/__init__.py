"""Benchmarks of the real-time path; run one with `python -m bench.<name>`."""
