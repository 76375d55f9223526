"""Corpus-mining benchmarks (benchmarks/README.md, "Mining"): one measurement per process, then the record.

    nice -n 19 .venv/bin/python -m benchmarks.mining exact --n 100000 --part /tmp/parts/exact.json
    nice -n 19 .venv/bin/python -m benchmarks.mining ivf --n 300000 --nprobe 16 --part /tmp/parts/ivf.json
    .venv/bin/python -m benchmarks.mining bucc --label int8 --log int8.log --tsv int8.tsv \
        --gold ../shared/data/bucc2018/de-en.sample.gold --part /tmp/parts/bucc-int8.json
    .venv/bin/python -m benchmarks.mining record --parts /tmp/parts/*.json

``exact``/``ivf`` run ``benchmarks/mining/vectors.py``; ``bucc`` reads an ``xalign-mine`` run's log (stage lines
and ``/usr/bin/time -v``) and its TSV (``benchmarks/mining/report.py``); ``record`` writes
``benchmarks/results/mining.json`` (``benchmarks/protocol.py``) and ``mining.md`` from the parts.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from benchmarks.mining import report, vectors
from benchmarks.protocol import REPO, record


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mining")
    sub = parser.add_subparsers(dest="what", required=True)
    exact = sub.add_parser("exact", help="exact k-NN, n x n, both directions, against the matmul limit")
    exact.add_argument("--n", type=int, default=100_000)
    exact.add_argument("--chunk-rows", type=int, default=8192)
    ivf = sub.add_parser("ivf", help="IVF build, search and recall@1 against exact search")
    ivf.add_argument("--n", type=int, default=1_000_000)
    ivf.add_argument("--nprobe", type=int, default=16)
    ivf.add_argument("--recall-queries", type=int, default=10_000)
    ivf.add_argument("--spread", type=float, default=1.5, help="noise around each centre (clustered_vectors)")
    bucc = sub.add_parser("bucc", help="figures of one xalign-mine run on BUCC: stages, peak RSS, F1")
    bucc.add_argument("--label", required=True)
    bucc.add_argument("--log", type=Path, required=True, help="the run's stderr, with /usr/bin/time -v")
    bucc.add_argument("--tsv", type=Path, required=True)
    bucc.add_argument("--gold", type=Path, required=True)
    bucc.add_argument("--sides", type=Path, nargs=2, metavar=("SRC", "TGT"), help="mined files: gold kept to their ids")
    bucc.add_argument("--command", default="", help="the command that made the run, for the record")
    bucc.add_argument("--note", default="")
    for measure in (exact, ivf, bucc):
        measure.add_argument("--part", type=Path, required=True, help="JSON file this measurement is written to")
    rec = sub.add_parser("record", help="write benchmarks/results/mining.json and mining.md from parts")
    rec.add_argument("--parts", type=Path, nargs="+", required=True)
    return parser


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    if args.what == "exact":
        return vectors.exact_run(args.n, args.chunk_rows)
    if args.what == "ivf":
        return vectors.ivf_run(args.n, args.nprobe, args.recall_queries, args.spread)
    figures = report.bucc_figures(args.log.read_text(encoding="utf-8"), args.tsv, args.gold, args.sides)
    return {"label": args.label, "run_command": args.command, "note": args.note, **figures}


def main(argv: list[str] | None = None) -> int:
    """Run one measurement into its part file, or record the parts."""
    args = _parser().parse_args(argv)
    command = "python -m benchmarks.mining " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.what == "record":
        parts = [json.loads(p.read_text(encoding="utf-8")) for p in args.parts]
        results = report.merge_parts(parts)
        record("mining", command, results)
        (REPO / "benchmarks" / "results" / "mining.md").write_text(report.markdown(results), encoding="utf-8")
        return 0
    part = {"kind": args.what, "command": command, **_measure(args)}
    args.part.parent.mkdir(parents=True, exist_ok=True)
    args.part.write_text(json.dumps(part, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(part, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
