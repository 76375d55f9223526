"""Throughput, latency and accuracy harnesses on one protocol (``protocol.py``); results go to ``results/``."""
