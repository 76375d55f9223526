"""Lanes against one multi-threaded session: the service's ``lanes`` setting, measured in process.

    python -m benchmarks.lanes --store store --model xalign-e5-small:1 --variants fp32 int8

The protocol texts, tokenised once, length-sorted and padded into batches of 32 (no tokenising in the timed
part). Per variant and round, each arrangement embeds every batch:
- ``threads2``: one session with the protocol's 2 intra-op threads, one batch at a time (the bare reference);
- ``threads2_x2``: that session run from 2 caller threads at once (what lanes on it would do);
- ``lanes2``: one single-threaded session run from 2 caller threads at once (the service's lanes);
- ``threads1``: the single-threaded session, one batch at a time.
The arrangements alternate within each round, so a drift of the shared machine touches all of them; the
figure is the median over rounds. Also the one-text latency (p50 over 200 texts) of 2 threads against 1,
which is why a batch alone keeps the multi-threaded session.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.command_line import benchmark_parser, run_command
from benchmarks.protocol import THREADS, protocol_texts, record
from xalign.runtime.onnx_encoder import OnnxEncoder
from xalign.runtime.tokenization import Batch

ROUNDS = 5
BATCH = 32
LANES = 2


def sorted_batches(encoder: OnnxEncoder, texts: list[str]) -> list[Batch]:
    """``texts`` tokenised, sorted by length and padded in batches of ``BATCH``."""
    ids = sorted(encoder.tokenizer.encode_ids(texts), key=len)
    return [encoder.tokenizer.pad(ids[start : start + BATCH]) for start in range(0, len(ids), BATCH)]


def rate(run: Callable[[], object], texts: int) -> float:
    """Texts per second of one ``run`` over every batch."""
    start = time.perf_counter()
    run()
    return texts / (time.perf_counter() - start)


def side_by_side(encoder: OnnxEncoder, batches: list[Batch]) -> Callable[[], object]:
    """Every batch, ``LANES`` at a time, each from its own caller thread."""

    def run() -> object:
        with ThreadPoolExecutor(LANES) as pool:
            return list(pool.map(encoder.run, batches))

    return run


def one_text_p50_ms(encoder: OnnxEncoder, texts: Sequence[str]) -> float:
    """Median milliseconds of embedding one text, after a 2 ms pause each (as between requests)."""
    times = []
    for text in texts:
        time.sleep(0.002)
        start = time.perf_counter()
        encoder.encode([text])
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(store: Path, model: str, variant: str, texts: list[str]) -> dict[str, float]:
    """The four arrangements' texts/s and the one-text p50 of 2 threads and of 1, for one variant."""
    multi = OnnxEncoder.from_store(store, model, variant, threads=THREADS)
    single = OnnxEncoder.from_store(store, model, variant, threads=1)
    batches = sorted_batches(multi, texts)
    runs = {
        "threads2": lambda: [multi.run(b) for b in batches],
        "threads2_x2": side_by_side(multi, batches),
        "lanes2": side_by_side(single, batches),
        "threads1": lambda: [single.run(b) for b in batches],
    }
    for run in runs.values():
        run()  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, run in runs.items():
            rates[name].append(rate(run, len(texts)))
    figures = {f"{name}_per_s": round(statistics.median(values), 1) for name, values in rates.items()}
    singles = texts[:100] + texts[-100:]
    figures["one_text_p50_ms_threads2"] = round(one_text_p50_ms(multi, singles), 2)
    figures["one_text_p50_ms_threads1"] = round(one_text_p50_ms(single, singles), 2)
    figures["lanes2_x_threads2"] = round(figures["lanes2_per_s"] / figures["threads2_per_s"], 2)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = benchmark_parser(__doc__, "xalign-lanes.log")
    parser.add_argument("--variants", nargs="+", default=["fp32", "int8"])
    args = parser.parse_args(argv)
    texts = protocol_texts(args.data)
    results = {variant: measure(args.store, args.model, variant, texts) for variant in args.variants}
    for variant, figures in results.items():
        print(variant, figures)
    print(f"recorded in {record('lanes', run_command('benchmarks.lanes', argv), results)}")


if __name__ == "__main__":
    main()
