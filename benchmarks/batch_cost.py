"""The batch cost model's constants (``service/engine/batch_plan.py``) for one model on this machine.

    python -m benchmarks.batch_cost --store store --model xalign-e5-small

Times one session run (2 onnxruntime threads, the protocol's) for a grid of (rows, length) shapes, median of
7 after a warm-up, and fits ``seconds = a + b * rows * length + c * rows * length**2`` by least squares.
In token-equivalents: ``overhead_tokens = a / b`` and ``attention_tokens = b / c``, the ``BatchCost`` fields.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.command_line import benchmark_parser, run_command
from benchmarks.protocol import THREADS, record
from xalign.runtime.onnx_encoder import OnnxEncoder
from xalign.runtime.tokenization import Batch

SHAPES = [(r, n) for r in (1, 4, 8, 16, 32, 64) for n in (8, 16, 24, 32, 48, 64)] + [(8, 128), (4, 256)]


def _batch(rows: int, length: int) -> Batch:
    """A (rows, length) batch of one repeated ordinary token id, every position attended."""
    ids = np.full((rows, length), 1000, dtype=np.int64)
    return Batch(input_ids=ids, attention_mask=np.ones_like(ids), token_counts=[length] * rows)


def time_shape(encoder: OnnxEncoder, rows: int, length: int, repeats: int = 7) -> float:
    """Median seconds of one run of a (rows, length) batch, after one warm-up run."""
    batch = _batch(rows, length)
    encoder.run(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        encoder.run(batch)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fit(measured: Sequence[tuple[int, int, float]]) -> dict[str, float]:
    """Least-squares ``a + b*rows*len + c*rows*len**2`` on the measured seconds, as BatchCost constants.

    Relative errors are what matter across shapes, so each row is weighted by 1 / its measured time.
    """
    design = np.array([[1.0, r * n, r * n * n] for r, n, _ in measured])
    seconds = np.array([s for *_, s in measured])
    weights = 1.0 / seconds
    (a, b, c), *_ = np.linalg.lstsq(design * weights[:, None], seconds * weights, rcond=None)
    predicted = design @ np.array([a, b, c])
    return {
        "overhead_tokens": round(float(a / b), 1),
        "attention_tokens": round(float(b / c), 1) if c > 0 else float("inf"),
        "seconds_per_token": float(b),
        "median_abs_relative_error": round(float(np.median(np.abs(predicted / seconds - 1))), 3),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure the grid, fit, print and record (``--record-as ''``: do not record)."""
    parser = benchmark_parser(__doc__, "xalign-bench-batch-cost.log")
    parser.add_argument("--variant", default="fp32")
    parser.add_argument("--record-as", default="batch_cost")
    args: argparse.Namespace = parser.parse_args(argv)
    encoder = OnnxEncoder.from_store(args.store, args.model, args.variant, threads=THREADS)
    measured = [(r, n, time_shape(encoder, r, n)) for r, n in SHAPES]
    for rows, length, seconds in measured:
        print(f"{rows:4d} x {length:4d}: {seconds * 1000:8.2f} ms  {seconds / (rows * length) * 1e6:7.1f} µs/token")
    results = {"model": args.model, "variant": args.variant, "threads": THREADS, "fit": fit(measured)}
    results["shapes_ms"] = [[r, n, round(s * 1000, 3)] for r, n, s in measured]
    print(results["fit"])
    if args.record_as:
        print(f"recorded in {record(args.record_as, run_command('benchmarks.batch_cost', argv), results)}")
    return results


if __name__ == "__main__":
    main()
