"""Benchmarks: one command each, run against the sandbox cloud (see bench/README.md)."""
