"""Corpus-mining benchmarks: ``python -m benchmarks.mining`` (benchmarks/README.md, "Mining")."""
