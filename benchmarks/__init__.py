"""Throughput, latency and accuracy harnesses (DESIGN.md §7); results are recorded in ``results/``."""
