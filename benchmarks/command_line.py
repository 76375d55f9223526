"""What the HTTP benchmarks' command lines share: the served model's options and the recorded command."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.protocol import DEFAULT_DATA


def benchmark_parser(doc: str | None, log_name: str) -> argparse.ArgumentParser:
    """A parser with the options of every HTTP benchmark: store, model, data folder and the server's log."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=Path("store"))
    parser.add_argument("--model", default="xalign-e5-small")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding tatoeba/")
    parser.add_argument("--log", type=Path, default=Path(tempfile.gettempdir()) / log_name)
    return parser


def run_command(module: str, argv: Sequence[str] | None) -> str:
    """The command line that ran ``module`` with ``argv`` (this process's arguments when None), to record."""
    return " ".join([f"python -m {module}", *(sys.argv[1:] if argv is None else argv)])
