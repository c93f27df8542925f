"""Benchmark helpers: pytest-benchmark JSON → pandas → reports and plots."""
