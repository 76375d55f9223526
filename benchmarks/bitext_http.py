"""Tatoeba accuracy of bitext mining through the HTTP API (``POST /v1/bitext/mine``).

    python -m benchmarks.bitext_http --store store --model xalign-e5-small

For each Tatoeba dev pair (xxx-eng) the service mines the 1,000 sentences of one side against the
1,000 of the other with ``retrieval=forward`` (every source sentence gets its best target), in both
directions; accuracy is the share of source lines whose mined target is the same line. ``absolute``
margin is plain cosine nearest neighbour (what ``xalign-train eval`` reports); ``ratio`` is LASER's
margin. The numbers must match ``xalign-train eval`` on the same model: the API adds no error of its own.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from benchmarks.command_line import benchmark_parser, run_command
from benchmarks.protocol import record
from benchmarks.server_process import serve
from xalign.training.evaluate.tatoeba import DEFAULT_LANGS, read_tatoeba

MARGINS = ("absolute", "ratio")


def mined_accuracy(client: httpx.Client, model: str, src: list[str], tgt: list[str], margin: str) -> float:
    """Percentage of ``src`` rows whose forward-mined ``tgt`` row is the same line."""
    body = {
        "model": model,
        "src": {"texts": src},
        "tgt": {"texts": tgt},
        "margin": margin,
        "retrieval": "forward",
    }
    response = client.post("/v1/bitext/mine", json=body)
    response.raise_for_status()
    pairs = response.json()["pairs"]
    hits = sum(1 for pair in pairs if pair["src_id"] == pair["tgt_id"])
    return round(100.0 * hits / len(src), 2)


def measure(base_url: str, model: str, data_dir: Path, langs: Sequence[str]) -> dict[str, Any]:
    """Accuracy per direction and margin, and each margin's mean over the directions."""
    table: dict[str, dict[str, float]] = {margin: {} for margin in MARGINS}
    with httpx.Client(base_url=base_url, timeout=600) as client:
        for lang in langs:
            pair = read_tatoeba(data_dir / "tatoeba", lang)
            for margin in MARGINS:
                table[margin][f"{lang}-eng"] = mined_accuracy(client, model, pair.src, pair.eng, margin)
                table[margin][f"eng-{lang}"] = mined_accuracy(client, model, pair.eng, pair.src, margin)
    means = {margin: round(statistics.fmean(scores.values()), 2) for margin, scores in table.items()}
    return {"model": model, "accuracy": table, "mean": means}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = benchmark_parser(__doc__, "xalign-bench-bitext.log")
    parser.add_argument("--variant", default="fp32")
    parser.add_argument("--langs", nargs="+", default=list(DEFAULT_LANGS))
    parser.add_argument("--record-as", default="bitext_http", help="results/<name>.json; empty: do not record")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Serve the model, mine every Tatoeba pair through HTTP, print and record the accuracies."""
    args = parse_args(argv)
    with serve(args.store, args.model, args.log, flags=["--variant", args.variant]) as server:
        results = {"variant": args.variant, **measure(server.url, args.model, args.data, args.langs)}
    for margin, scores in results["accuracy"].items():
        print(f"{margin}: mean {results['mean'][margin]}  " + "  ".join(f"{k} {v}" for k, v in scores.items()))
    if args.record_as:
        print(f"recorded in {record(args.record_as, run_command('benchmarks.bitext_http', argv), results)}")
    return results


if __name__ == "__main__":
    main()
