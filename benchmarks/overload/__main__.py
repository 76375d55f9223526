"""``python -m benchmarks.overload``: run the overload benchmark (``benchmarks/overload/run.py``)."""

from __future__ import annotations

from benchmarks.overload.run import main

main()
