"""``xalign-mine``: mine parallel sentences from two large corpora with a store model, resumably.

Embeds the distinct sentences of both sides into shards under --work, searches the k nearest neighbours
both ways, scores them with LASER's margin and writes the kept pairs, best first, to --out as
``score TAB source TAB target`` (with --ids: ``score TAB source-id TAB target-id TAB source TAB target``).
Killed and started again with the same arguments, it reuses every finished shard and neighbour file.
Exit status: 0 done; 2 bad usage or input (a missing or malformed file, an empty side, an unknown model
or variant, a work folder holding another model's or input's results): an error line, nothing written.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from xalign.modelstore.errors import StoreError
from xalign.runtime.errors import EngineError
from xalign.runtime.margin import Margin, MiningConfig, Retrieval
from xalign.runtime.mining.corpus import CorpusError
from xalign.runtime.mining.job import JobReport, JobSpec, run_job
from xalign.runtime.mining.neighbour_files import SearchKind, SearchSettings
from xalign.runtime.mining.neighbours import DEFAULT_CHUNK_ROWS
from xalign.runtime.mining.shards import ReuseError

EXIT_BAD_INPUT = 2


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``xalign-mine``."""
    parser = argparse.ArgumentParser(
        prog="xalign-mine", description=__doc__.replace("``", ""), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _model_options(parser.add_argument_group("model"))
    _data_options(parser.add_argument_group("input and output"))
    _mining_options(parser.add_argument_group("mining (as POST /v1/bitext/mine)"))
    _scale_options(parser.add_argument_group("scale"))
    return parser


def _model_options(model: argparse._ArgumentGroup) -> None:
    model.add_argument("--store", type=Path, required=True, metavar="DIR", help="model store folder")
    model.add_argument(
        "--model", required=True, metavar="REF", help="NAME, NAME:VERSION or NAME@ALIAS (pinned to one version)"
    )
    model.add_argument(
        "--variant", default="fp32", metavar="NAME", help="ONNX variant, e.g. fp32 or int8 (default: fp32)"
    )
    model.add_argument(
        "--batch-size", type=_positive, default=32, metavar="N", help="texts per encoder batch (default: 32)"
    )


def _data_options(data: argparse._ArgumentGroup) -> None:
    sides = "one sentence per line; .gz read as it is; a folder stands for its files sorted by name"
    data.add_argument(
        "--src", type=Path, nargs="+", required=True, metavar="PATH", help=f"source files or folders ({sides})"
    )
    data.add_argument(
        "--tgt", type=Path, nargs="+", required=True, metavar="PATH", help="target files or folders (as --src)"
    )
    data.add_argument("--ids", action="store_true", help="lines are 'id TAB sentence' (BUCC); ids go to the output")
    data.add_argument(
        "--work", type=Path, required=True, metavar="DIR", help="work folder: shards, neighbours, indexes (resumable)"
    )
    data.add_argument("--out", type=Path, required=True, metavar="TSV", help="output TSV, written whole at the end")
    data.add_argument("--restart", action="store_true", help="discard what --work holds and start afresh")
    data.add_argument("--no-progress", action="store_true", help="no progress bars (log lines stay)")


def _mining_options(mining: argparse._ArgumentGroup) -> None:
    mining.add_argument("--margin", choices=get_args(Margin), default="ratio", help="margin function (default: ratio)")
    mining.add_argument("--k", type=_positive, default=4, metavar="N", help="neighbourhood size (default: 4)")
    mining.add_argument("--retrieval", choices=get_args(Retrieval), default="max", help="retrieval (default: max)")
    mining.add_argument(
        "--threshold", type=float, metavar="X", help="keep pairs with score >= this (default: keep all)"
    )


def _scale_options(scale: argparse._ArgumentGroup) -> None:
    scale.add_argument(
        "--shard-size", type=_positive, default=10_000, metavar="N", help="texts per shard (default: 10000)"
    )
    scale.add_argument(
        "--chunk-rows",
        type=_positive,
        default=DEFAULT_CHUNK_ROWS,
        metavar="N",
        help=f"rows per block of exact search and per approximate query batch (default: {DEFAULT_CHUNK_ROWS})",
    )
    scale.add_argument(
        "--index",
        choices=get_args(SearchKind),
        default="exact",
        help="kNN search: exact, or an approximate index of each side (default: exact)",
    )
    scale.add_argument(
        "--nprobe", type=_positive, default=16, metavar="N", help="lists visited by ivf and ivfpq (default: 16)"
    )
    scale.add_argument(
        "--ef-search", type=_positive, default=128, metavar="N", help="HNSW search breadth (default: 128)"
    )
    scale.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the embedding and search tasks on a Ray cluster: auto (the one running here, else a new local"
        " one) or ray://HOST:PORT or HOST:PORT; its nodes must see --work and --store at the same paths"
        " (extra 'distributed')",
    )


def spec_from_args(args: argparse.Namespace) -> JobSpec:
    """The job the parsed arguments describe."""
    search = SearchSettings(args.index, args.chunk_rows, nprobe=args.nprobe, ef_search=args.ef_search)
    return JobSpec(
        store=args.store,
        model=args.model,
        src=tuple(args.src),
        tgt=tuple(args.tgt),
        work=args.work,
        out=args.out,
        variant=args.variant,
        config=MiningConfig(args.margin, args.k, args.retrieval, args.threshold),
        fmt="ids" if args.ids else "plain",
        shard_size=args.shard_size,
        search=search,
        batch_size=args.batch_size,
        restart=args.restart,
        progress=not args.no_progress,
    )


def _run(spec: JobSpec, ray_address: str | None) -> JobReport:
    """The job in this process, or with ``--ray`` on a Ray cluster (Ray is imported only then)."""
    if ray_address is None:
        return run_job(spec)
    from xalign.runtime.mining.ray_executor import connect  # noqa: PLC0415  # the optional extra 'distributed'

    with connect(ray_address) as executor:
        return run_job(spec, executor)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``xalign-mine``; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.out.parent.is_dir():
        parser.error(f"--out: folder {args.out.parent} does not exist")
    if args.out.is_dir():
        parser.error(f"--out: {args.out} is a folder")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    try:
        report = _run(spec_from_args(args), args.ray)
    except (CorpusError, ReuseError, StoreError, EngineError) as exc:
        print(f"xalign-mine: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{report.pairs} pairs written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
