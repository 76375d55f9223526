"""``xalign-mine`` in-process against the same job on a local Ray cluster: the same TSV, wall times, overhead.

Takes the first ``--lines`` lines of each side of BUCC-2018 (``id TAB sentence``), mines them once in one
process and once with ``--ray`` on a cluster of ``--nodes`` one-CPU nodes on this machine
(``benchmarks/ray_cluster.py``), each in a fresh work folder, asserts the two outputs are byte-identical and
records the wall time of each run (the cluster's start apart), their ratio and each run's stage log lines.
The in-process run's encoder uses every core; the cluster's actors one onnxruntime thread each, one per
node CPU. ``--record-as NAME`` writes ``benchmarks/results/NAME.json`` and ``.md``.

    nice -n 19 .venv/bin/python -m benchmarks.mining_ray --store /work/bench_store --model xalign-e5-small \\
        --lines 1000 --record-as mining_ray
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.command_line import run_command
from benchmarks.ray_cluster import local_cluster

RESULTS = Path(__file__).parent / "results"
STAGE = re.compile(r"^\S+ \S+ ((?:embed|knn|margin|write)\b.*)$")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=Path("/work/bench_store"))
    parser.add_argument("--model", default="xalign-e5-small")
    parser.add_argument("--variant", default="fp32")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bucc2018"), help="folder of BUCC-2018")
    parser.add_argument("--pair", default="de-en")
    parser.add_argument("--lines", type=int, default=5000, help="first lines of each side")
    parser.add_argument("--shard-size", type=int, default=250)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--machine", default="2 shared CPU cores")
    parser.add_argument("--note", default="")
    parser.add_argument("--record-as", metavar="NAME")
    return parser


def _inputs(args: argparse.Namespace, folder: Path) -> list[str]:
    """The first lines of each side, written under ``folder``; the job's input options."""
    source, target = args.pair.split("-")
    paths = []
    for lang in (source, target):
        lines = (args.data / f"{args.pair}.sample.{lang}").read_text(encoding="utf-8").splitlines(keepends=True)
        path = folder / f"{lang}.txt"
        path.write_text("".join(lines[: args.lines]), encoding="utf-8")
        paths.append(str(path))
    return ["--src", paths[0], "--tgt", paths[1], "--ids"]


def _mine(args: argparse.Namespace, inputs: list[str], folder: Path, *extra: str) -> dict[str, Any]:
    """One ``xalign-mine`` run in a fresh process: wall time, output file and stage log lines."""
    out = folder / "pairs.tsv"
    model = ["--store", str(args.store), "--model", args.model, "--variant", args.variant]
    job = [*model, *inputs, "--work", str(folder / "work"), "--out", str(out), "--shard-size", str(args.shard_size)]
    command = [sys.executable, "-m", "xalign.runtime.mining.cli", *job, "--no-progress", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"xalign-mine failed ({done.returncode}):\n{done.stderr}")
    stages = [m.group(1) for m in map(STAGE.match, done.stderr.splitlines()) if m]
    return {"seconds": round(seconds, 2), "out": out, "stages": stages}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Both runs on the same inputs; asserts the outputs are equal."""
    with tempfile.TemporaryDirectory(prefix="mining-ray-") as name:
        folder = Path(name)
        inputs = _inputs(args, folder)
        load_before = os.getloadavg()
        (folder / "local").mkdir()
        local = _mine(args, inputs, folder / "local")
        started = time.perf_counter()
        with local_cluster(args.nodes) as cluster:
            start_s = time.perf_counter() - started
            (folder / "ray").mkdir()
            on_ray = _mine(args, inputs, folder / "ray", "--ray", cluster.address)
        expected = local.pop("out").read_bytes()
        assert on_ray.pop("out").read_bytes() == expected, "the Ray run wrote another TSV"
    return {
        "lines per side": args.lines,
        "pairs": expected.count(b"\n"),
        "in-process": local,
        "ray": {**on_ray, "nodes": args.nodes, "cluster start seconds": round(start_s, 2)},
        "ray / in-process": round(on_ray["seconds"] / local["seconds"], 2),
        "load average before (1, 5, 15 min)": [round(x, 2) for x in load_before],
        "load average after (1, 5, 15 min)": [round(x, 2) for x in os.getloadavg()],
    }


def markdown(results: dict[str, Any]) -> str:
    """The recorded results as a short Markdown page."""
    m = results["measured"]
    rows = [
        "| run | wall s | stages |",
        "|---|---|---|",
        f"| in-process | {m['in-process']['seconds']} | {'; '.join(m['in-process']['stages'])} |",
        f"| Ray, {m['ray']['nodes']} nodes | {m['ray']['seconds']} | {'; '.join(m['ray']['stages'])} |",
    ]
    return "\n".join(
        [
            "# xalign-mine in-process against a local Ray cluster",
            "",
            f"Command: `{results['command']}`",
            "",
            f"Machine: {results['machine']}; load average (1, 5, 15 min) before "
            f"{m['load average before (1, 5, 15 min)']}, after {m['load average after (1, 5, 15 min)']}.",
            f"Input: the first {m['lines per side']:,} lines of each side; {m['pairs']:,} pairs, the same bytes "
            f"both ways. Cluster start (not in the Ray run's time): {m['ray']['cluster start seconds']} s.",
            "",
            *rows,
            "",
            f"Ray / in-process wall time: **{m['ray / in-process']}**.",
            "",
            results["notes"],
            "",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    """Measure, print, and record with ``--record-as``."""
    args = _parser().parse_args(argv)
    command = "nice -n 19 .venv/bin/" + run_command("benchmarks.mining_ray", argv)
    results = {"command": command, "machine": args.machine, "measured": measure(args), "notes": args.note}
    print(json.dumps(results, indent=2))
    if args.record_as:
        (RESULTS / f"{args.record_as}.json").write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / f"{args.record_as}.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
