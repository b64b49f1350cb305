"""Benchmarks (not CI pass/fail): `make bench` runs them all; each prints a table with the same-run baseline."""
