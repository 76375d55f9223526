"""Sentences per second of a bare onnxruntime session on the protocol texts, per ONNX variant.

    python -m benchmarks.bare_onnxruntime --store store --model xalign-e5-small --variants fp32 int8

This is the reference every service figure is compared with (the protocol of ``benchmarks/protocol.py``):
same model file, 2 threads, length-sorted batches of 32.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.protocol import DEFAULT_DATA, THREADS, median_rate, protocol_texts, record
from xalign.runtime.onnx_encoder import OnnxEncoder


def measure(store: Path, model: str, variant: str, texts: list[str], batch_size: int = 32) -> float:
    """Sentences per second for one variant."""
    encoder = OnnxEncoder.from_store(store, model, variant, threads=THREADS)
    return median_rate(lambda: len(encoder.encode(texts, batch_size)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=Path("store"))
    parser.add_argument("--model", default="xalign-e5-small")
    parser.add_argument("--variants", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    texts = protocol_texts(args.data)
    results = {v: round(measure(args.store, args.model, v, texts), 1) for v in args.variants}
    for variant, rate in results.items():
        print(f"{variant}: {rate} sentences/s (batch 32, {THREADS} threads, {len(texts)} texts)")
    out = record("bare_onnxruntime", " ".join(["python -m benchmarks.bare_onnxruntime", *sys.argv[1:]]), results)
    print(f"recorded in {out}")


if __name__ == "__main__":
    main()
