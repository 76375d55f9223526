"""Open time and peak RSS of a persistent index: whole-log replay (rebuilding FAISS) against snapshot + empty tail.

    nice -n 19 .venv/bin/python -m benchmarks.index_open --runs hnsw:200000 ivf:1000000 flat:1000000

For each ``kind:rows`` run, the log of ``rows`` seeded random 384-d unit vectors (texts ``row <i>``) is written in
records of 10,000 rows, then two fresh processes each open the index with ``StoredIndex.open``
(``service/search/index_store.py``):

* **before**: no snapshot, so the whole log is replayed and FAISS rebuilt (what every start did before
  snapshots); this process then writes the snapshot (timed) and records the top-10 ids of 100 queries;
* **after**: the snapshot is read back and the (empty) log tail replayed; the same queries must give the
  same ids.

Each phase reports wall seconds of the open, the process's peak RSS (``ru_maxrss``) and its RSS after
imports, so the open's own share shows. ``--record-as NAME`` writes ``benchmarks/results/NAME.json``
and ``.md`` (an empty name records nothing).
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np

from xalign.service.search.faiss_index import validate_params
from xalign.service.search.index_store import StoredIndex
from xalign.service.search.persistence import IndexKind, IndexMeta, LogWriter, Record, log_name, write_meta
from xalign.service.search.snapshot import SnapshotPolicy, snapshot_name

DIM = 384
RECORD_ROWS = 10_000
RESULTS = Path(__file__).parent / "results"
PARAMS: dict[str, dict[str, int]] = {
    "hnsw": {"m": 32, "ef_construction": 40, "ef_search": 64},
    "ivf": {"nlist": 1024, "nprobe": 16},
}


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)  # (n, DIM)


def write_log(folder: Path, kind: IndexKind, rows: int, seed: int) -> None:
    """An index folder holding only meta.json and the log of ``rows`` seeded unit vectors."""
    folder.mkdir(parents=True)
    meta = IndexMeta(name=folder.name, model="bench", model_version=1, dim=DIM, kind=kind,
                     params=validate_params(kind, PARAMS.get(kind)))  # fmt: skip
    write_meta(folder, meta)
    writer = LogWriter.create(folder / log_name(0))
    rng = np.random.default_rng(seed)
    for first in range(0, rows, RECORD_ROWS):
        n = min(RECORD_ROWS, rows - first)
        writer.append(Record(first, _unit(rng, n), [f"row {i}" for i in range(first, first + n)]))
    writer.close()


def _rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def open_phase(folder: Path, phase: str) -> dict[str, Any]:
    """Open the index in this process (timed); in phase ``before`` also write its snapshot (timed)."""
    rss_start = _rss_mib()
    started = time.perf_counter()
    index = StoredIndex.open(folder, SnapshotPolicy(rows=0, build_s=0))
    result: dict[str, Any] = {
        "open_s": round(time.perf_counter() - started, 2),
        "rows": index.count,
        "rss_after_imports_mib": round(rss_start),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    queries = _unit(np.random.default_rng(99), 100)
    hits = index.search(queries, 10, model_version=1)
    result["top10"] = [[h.id for h in row] for row in hits]
    if phase == "before":
        started = time.perf_counter()
        index.close()  # a clean shutdown: writes the snapshot of every row
        result["snapshot_write_s"] = round(time.perf_counter() - started, 2)
        result["snapshot_bytes"] = (folder / snapshot_name(0)).stat().st_size
    else:
        index.close(snapshot=False)
    return result


def _run_phase(folder: Path, phase: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.index_open", "--phase", phase, "--folder", str(folder)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def measure(kind: IndexKind, rows: int, work: Path, seed: int) -> dict[str, Any]:
    """Write the log, then open it before and after its snapshot, each in a fresh process."""
    folder = work / f"{kind}-{rows}"
    started = time.perf_counter()
    write_log(folder, kind, rows, seed)
    log_write_s = time.perf_counter() - started
    before = _run_phase(folder, "before")
    after = _run_phase(folder, "after")
    same = np.mean([a == b for a, b in zip(before.pop("top10"), after.pop("top10"), strict=True)])
    return {
        "kind": kind, "rows": rows, "dim": DIM, "params": PARAMS.get(kind, {}),
        "log_bytes": (folder / log_name(0)).stat().st_size, "log_write_s": round(log_write_s, 1),
        "before": before, "after": after, "same_top10_fraction": float(same),
    }  # fmt: skip


def markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown page."""
    lines = [
        "# Index open time: whole-log replay against snapshot + log tail",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Machine: {results['machine']}. Random unit vectors, {DIM}-d, seed {results['seed']}; each phase in a "
        "fresh process; RSS in MiB (peak = `ru_maxrss`, which includes the imports).",
        "",
        "| kind | rows | params | before: open s | before: peak RSS | snapshot write s | snapshot MiB "
        "| after: open s | after: peak RSS | RSS after imports | same top-10 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        b, a = r["before"], r["after"]
        lines.append(
            f"| {r['kind']} | {r['rows']:,} | {json.dumps(r['params'])} | {b['open_s']} | {b['peak_rss_mib']} "
            f"| {b['snapshot_write_s']} | {b['snapshot_bytes'] / 2**20:.0f} | {a['open_s']} | {a['peak_rss_mib']} "
            f"| {a['rss_after_imports_mib']} | {r['same_top10_fraction']:.2f} |"
        )
    return "\n".join([*lines, "", *results.get("notes", []), ""])


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or, with ``--phase``, one open in this process)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=["hnsw:1000000", "ivf:1000000"], help="kind:rows ...")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "xalign-index-open")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--machine", default="2 shared CPU cores, 24 GiB")
    parser.add_argument("--note", action="append", default=[], help="a line added under the table")
    parser.add_argument("--record-as", default="index_open")
    parser.add_argument("--phase", choices=["before", "after"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        print(json.dumps(open_phase(args.folder, args.phase)))
        return
    runs = []
    for run in args.runs:
        kind, _, rows = run.partition(":")
        runs.append(measure(cast(IndexKind, kind), int(rows), args.work, args.seed))
        print(json.dumps(runs[-1]), flush=True)
    command = "nice -n 19 .venv/bin/python -m benchmarks.index_open " + shlex.join(argv or sys.argv[1:])
    results = {"command": command, "machine": args.machine, "seed": args.seed, "runs": runs, "notes": args.note}
    if args.record_as:
        (RESULTS / f"{args.record_as}.json").write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / f"{args.record_as}.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
