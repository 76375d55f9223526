"""The shared benchmark protocol (benchmarks/README.md): texts, threads, rounds, and how results are recorded."""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
THREADS = 2
ROUNDS = 3


def protocol_texts(data_dir: Path = DEFAULT_DATA, per_file: int = 1000) -> list[str]:
    """The first 1,000 lines of tatoeba.deu-eng.deu and of tatoeba.deu-eng.eng (2,000 sentences)."""
    texts: list[str] = []
    for suffix in ("deu", "eng"):
        path = data_dir / "tatoeba" / f"tatoeba.deu-eng.{suffix}"
        with path.open(encoding="utf-8") as handle:
            texts.extend(line.rstrip("\n") for _, line in zip(range(per_file), handle, strict=False))
    return texts


def median_rate(run: Callable[[], int], rounds: int = ROUNDS) -> float:
    """Items per second of ``run`` (which returns how many items it processed): one warm-up, median of rounds."""
    run()
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        items = run()
        rates.append(items / (time.perf_counter() - start))
    return statistics.median(rates)


def record(name: str, command: str, results: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` with the command that produced it, the machine and the code revision."""
    git = ["git", "rev-parse", "--short", "HEAD"]
    revision = subprocess.run(git, capture_output=True, text=True, cwd=REPO, check=False)
    out = REPO / "benchmarks" / "results" / f"{name}.json"
    payload = {
        "command": command,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "code_revision": revision.stdout.strip(),
        "results": results,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return out
