"""Benchmarks: quality and speed; each prints a table and writes bench/results/*.json."""
