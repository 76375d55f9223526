"""The mining benchmark's report code on fake numbers: log parsing, BUCC F1 from a TSV, the tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.mining import report

LOG = """load_before: 1.50 1.20 1.00 3/100 42
2026-12-02 04:05:54,056 read src: 4,000 lines in 0.5 s (8,000 lines/s)
2026-12-02 04:06:54,056 embed src: 3,000 sentences in 60.0 s (50 sentences/s)
2026-12-02 04:07:54,056 embed tgt: 1,000 sentences in 20.0 s (50 sentences/s); 500 reused from an earlier run
2026-12-02 04:08:54,056 knn src->tgt: 3,000 queries in 2.0 s (1,500 queries/s)
\tMaximum resident set size (kbytes): 2097152
\tPercent of CPU this job got: 34%
\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03.5
load_after: 2.25 1.20 1.00 3/100 42
"""


def test_stage_times_reads_every_finished_stage() -> None:
    stages = report.stage_times(LOG)
    assert set(stages) == {"read src", "embed src", "embed tgt", "knn src->tgt"}
    assert stages["embed src"] == {"count": 3000.0, "seconds": 60.0, "per_s": 50.0}


def test_run_footprint_reads_time_v_and_loads() -> None:
    found = report.run_footprint(LOG)
    assert found == {
        "peak_rss_gib": 2.0, "wall_seconds": 3723.5, "cpu_percent": 34.0, "load_before_1min": 1.5,
        "load_after_1min": 2.25,
    }  # fmt: skip


@pytest.mark.parametrize(("text", "seconds"), [("0:07.25", 7.25), ("1:00:00", 3600.0), ("12:30", 750.0)])
def test_wall_seconds(text: str, seconds: float) -> None:
    assert report.wall_seconds(text) == seconds


def test_bucc_figures_scores_the_tsv_against_the_kept_gold(tmp_path: Path) -> None:
    tsv = tmp_path / "out.tsv"
    tsv.write_text("0.9\ts1\tt1\ta\tb\n0.8\ts2\tt9\tc\td\n0.7\ts3\tt3\te\tf\n", encoding="utf-8")
    gold = tmp_path / "gold"
    gold.write_text("s1\tt1\ns3\tt3\ns4\tt4\n", encoding="utf-8")
    src, tgt = tmp_path / "src", tmp_path / "tgt"
    src.write_text("s1\ta\ns2\tc\ns3\te\n", encoding="utf-8")
    tgt.write_text("t1\tb\nt3\tf\nt9\td\n", encoding="utf-8")
    whole = report.bucc_figures(LOG, tsv, gold)["bucc"]
    kept = report.bucc_figures(LOG, tsv, gold, (src, tgt))["bucc"]
    assert (whole["gold"], kept["gold"]) == (3, 2)
    # Best cut on the kept gold: all three (P 2/3, R 1) beats the first alone (P 1, R 1/2).
    assert kept["correct"] == 2 and kept["f1"] == pytest.approx(80.0)
    assert kept["threshold"] == pytest.approx(0.7)


def _exact(n: int) -> dict[str, Any]:
    return {
        "kind": "exact", "command": f"python -m benchmarks.mining exact --n {n}", "n": n, "dim": 384,
        "seconds": 30.0, "matmul_gflops_before": 60.0, "matmul_gflops_after": 40.0, "limit_seconds": 20.0,
        "ratio_to_limit": 1.5, "achieved_gflops": 33.0, "peak_rss_gib": 0.5, "load_1min_before": 2.0,
        "load_1min_after": 3.0,
    }  # fmt: skip


def _ivf() -> dict[str, Any]:
    return {
        "kind": "ivf", "command": "python -m benchmarks.mining ivf --n 1000", "n": 1000, "dim": 384, "spread": 1.5,
        "nlist": 128, "nprobe": 16, "build_seconds": 1.0, "search_seconds": 2.0, "queries_per_s": 500.0,
        "recall_at_1": 0.95, "recall_queries": 100, "peak_rss_gib": 0.25, "load_1min_before": 2.0,
        "load_1min_after": 2.5,
    }  # fmt: skip


def test_merge_and_markdown(tmp_path: Path) -> None:
    bucc = {
        "kind": "bucc", "label": "int8", "command": "python -m benchmarks.mining bucc", "run_command": "xalign-mine",
        "note": "whole sample", "stages": report.stage_times(LOG), **report.run_footprint(LOG),
        "bucc": {"precision": 90.0, "recall": 80.0, "f1": 84.7, "threshold": 1.05, "gold": 10, "extracted": 9,
                 "correct": 8},
    }  # fmt: skip
    merged = report.merge_parts([_exact(100), _exact(1000), _ivf(), bucc])
    assert list(merged["exact"]) == ["100", "1000"] and list(merged["bucc"]) == ["int8"]
    assert list(merged["ivf"]) == ["1000/1.5"]
    text = report.markdown(merged)
    # embed: 4,000 sentences in 80 s; k-NN 2 s; wall 3723.5 s.
    row = "| int8 | 4,000 | 80.0 | 50.0 | 2.0 | 3,723.5 | 2.00 | 34 | 90.0 / 80.0 / **84.7** (10) | 1.0500 | 1.5 → 2.2"
    assert row in text
    assert "| 1,000 x 1,000 x 384 | 30.0 | 60.0 / 40.0 | 20.0 | **1.50** | 33.0 | 0.50 | 2.0 → 3.0 |" in text
    assert "| 1,000 x 1,000 x 384 | 1.5 | 128 | 16 | 1.0 | 2.0 | 500 | **0.950** (100) | 0.25 | 2.0 → 2.5 |" in text
    assert "- int8: whole sample" in text and "xalign-mine\n" in text
