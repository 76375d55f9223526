"""The overload benchmark's pure parts: gauges read from /metrics, per-kind summaries, the results table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.overload import report
from benchmarks.overload.phases import parse_gauges
from benchmarks.overload.report import markdown_table, percentile, summarize
from benchmarks.overload.workload import Answer, Gauges, Plan, load_bodies

METRICS = """# HELP xalign_queue_texts texts waiting for inference
xalign_queue_texts{model="xalign-e5-small"} 212.0
xalign_queue_texts{model="other"} 3.0
xalign_queue_tokens{model="xalign-e5-small"} 4.1e+03
xalign_requests_total{route="/v1/embeddings",status="200"} 7.0
"""


def test_gauges_are_the_largest_per_name_and_none_when_absent() -> None:
    assert parse_gauges(METRICS) == (212.0, 4100.0)
    # The code before admission by work has no token gauge.
    assert parse_gauges('xalign_queue_texts{model="m"} 4352.0\n') == (4352.0, None)


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([2.0], 99) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([float(i) for i in range(101)], 99) == 99.0


def _run() -> dict[str, object]:
    answers = [
        Answer("mine", 200, 4.0, False),
        Answer("mine", 200, 6.0, False),
        Answer("mine", 429, 0.01, True),
        Answer("mine", 503, 0.02, False),  # a refusal without Retry-After is counted
        Answer("mine", 0, 120.0, False, "timeout"),
        Answer("embed", 200, 1.0, False),
        Answer("embed", 0, 30.0, False, "cut"),
    ]
    return {
        "answers": answers,
        "probes": [Answer("probe", 200, 0.02, False), Answer("probe", 200, 0.04, False)],
        "baseline": [0.01, 0.012, 0.011],
        "gauges": Gauges(series=[(0.5, 100.0, None), (1.0, 300.0, None)], failed_polls=1),
        "recovery": {"recovered_after_s": None, "after": []},
        "disconnect": {
            "large_alone": {"status": 200, "seconds": 3.2},
            "one_text_after_disconnect": {"status": 200, "seconds": 2.9, "note": ""},
        },
    }


def test_summary_counts_outcomes_and_rates() -> None:
    summary = summarize(_run(), Plan(seconds=30.0, recovery_limit_s=60.0))
    mine = summary["mine"]
    assert (mine["requests"], mine["200"], mine["429"], mine["503"], mine["timeout"]) == (5, 2, 1, 1, 1)
    assert mine["refusals_without_retry_after"] == 1
    assert mine["p50_s"] == 5.0
    assert mine["successes_per_min"] == 4.0  # 2 in 30 s
    assert summary["embed"]["cut_at_end"] == 1
    assert summary["embed"]["max_answer_s"] == 1.0  # a request cut at the end has no answer
    assert summary["queue"] == {"max_queue_texts": 300, "max_queue_tokens": None, "polls": 2, "failed_polls": 1}
    assert summary["baseline_p50_s"] == 0.011


def test_table_has_a_column_per_run_and_says_when_a_server_never_recovered() -> None:
    before = summarize(_run(), Plan(seconds=30.0, recovery_limit_s=60.0))
    after = json.loads(json.dumps(before))  # what record() reads back from the JSON file
    after["recovery_s"] = 0.02
    table = markdown_table({"before": {"summary": before}, "after": {"summary": after}}).splitlines()
    assert table[0] == "| | before | after |"
    assert "| mine: requests: 200 / 429 / 503 / other | 5: 2 / 1 / 1 / 0 | 5: 2 / 1 / 1 / 0 |" in table
    assert "| recovery: one text under 2 x baseline p50 after | not within 60 s | 0.020 s |" in table
    assert "| max queue gauge: texts / tokens | 300 / - | 300 / - |" in table


def test_each_client_sends_its_own_full_sized_bodies() -> None:
    plan = Plan(clients=4, side=3, embed_texts=5)
    bodies = load_bodies("m", ["s0", "s1", "s2", "s3"], ["t0", "t1"], plan)
    assert len(bodies.mine) == len(bodies.embed) == 4
    first, second = json.loads(bodies.mine[0]), json.loads(bodies.mine[1])
    assert first == {"model": "m", "src": {"texts": ["s0", "s1", "s2"]}, "tgt": {"texts": ["t0", "t1", "t0"]}}
    assert second["src"]["texts"] == ["s3", "s0", "s1"]
    assert len(json.loads(bodies.embed[2])["input"]) == 5


def test_a_rerun_replaces_its_column_and_keeps_the_notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    summary = summarize(_run(), Plan(seconds=30.0))
    entry = {"when": "t", "machine": "x86_64", "served_code": {"revision": "abc"}, "command": "c", "summary": summary}
    report.record("o", "before", entry)
    with (tmp_path / "o.md").open("a", encoding="utf-8") as notes:
        notes.write("\n## Notes\n\nThe old server never recovered.\n")
    report.record("o", "after", entry)
    report.record("o", "before", {**entry, "command": "c2"})
    text = (tmp_path / "o.md").read_text(encoding="utf-8")
    assert text.splitlines()[4] == "| | before | after |"
    assert "`c2`" in text and "`c`" in text
    assert text.endswith("## Notes\n\nThe old server never recovered.\n")
    assert list(json.loads((tmp_path / "o.json").read_text(encoding="utf-8"))["runs"]) == ["before", "after"]
