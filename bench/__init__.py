"""Benchmarks (run from the README; not part of the test suite)."""
