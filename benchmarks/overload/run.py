"""The overload benchmark's command line: serve, run every phase, print and record the summary."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks import overload
from benchmarks.command_line import benchmark_parser, run_command
from benchmarks.overload.phases import run_phases
from benchmarks.overload.report import record, summarize
from benchmarks.overload.workload import Plan, load_texts
from benchmarks.protocol import REPO
from benchmarks.server_process import serve


def _git(checkout: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True, check=False).stdout


def served_code(base_url: str, checkout: Path | None) -> dict[str, Any]:
    """Which code answers: the checkout's revision, uncommitted changes to it, and its queue gauges."""
    folder = checkout or REPO
    changed = _git(folder, "status", "--porcelain", "--", "service", "modelstore").split()
    metrics = httpx.get(f"{base_url}/metrics", timeout=10).text
    return {
        "checkout": str(folder),
        "revision": _git(folder, "rev-parse", "--short", "HEAD").strip() + ("+uncommitted" if changed else ""),
        "queue_tokens_gauge": "xalign_queue_tokens" in metrics,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = benchmark_parser(overload.__doc__, "xalign-overload-serve.log")
    parser.add_argument("--checkout", type=Path, help="run this checkout's server (python -m service.cli)")
    parser.add_argument("--clients", type=int, default=Plan.clients)
    parser.add_argument("--seconds", type=float, default=Plan.seconds)
    parser.add_argument(
        "--retry-pause-s", type=float, default=Plan.retry_pause_s, help="a load client's pause after a refusal"
    )
    parser.add_argument("--recovery-limit-s", type=float, default=Plan.recovery_limit_s)
    parser.add_argument("--serve-flag", action="append", default=[], help="extra server flag (repeatable)")
    parser.add_argument("--label", default="current", help="the run's column in the results")
    parser.add_argument("--record-as", default="overload", help="results/<name>.json and .md; empty: do not record")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every phase against a fresh server, print the summary, record it unless ``--record-as ''``."""
    args = parse_args(argv)
    plan = Plan(
        clients=args.clients,
        seconds=args.seconds,
        retry_pause_s=args.retry_pause_s,
        recovery_limit_s=args.recovery_limit_s,
    )
    texts = load_texts(args.data)
    flags = ["--log-level", "warning", *args.serve_flag]
    with serve(args.store, args.model, args.log, flags=flags, checkout=args.checkout) as server:
        code = served_code(server.url, args.checkout)
        print(f"serving {code}", flush=True)
        raw = asyncio.run(run_phases(server.url, args.model, texts, plan))
    entry = {
        "command": run_command("benchmarks.overload", argv),
        "server_command": server.command,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "served_code": code,
        "plan": asdict(plan),
        "summary": summarize(raw, plan),
        "queue_series": raw["gauges"].series,
        "recovery_points": raw["recovery"]["points"],
        "probe_latencies": [(a.status, round(a.seconds, 4), a.note) for a in raw["probes"]],
    }
    print(json.dumps(entry["summary"], indent=2))
    if args.record_as:
        print("recorded in", *record(args.record_as, args.label, entry))
    return entry
