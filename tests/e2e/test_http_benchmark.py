"""Smoke test of ``benchmarks/http_service.py`` on the tiny store with very small counts (nothing recorded)."""

from __future__ import annotations

from pathlib import Path

import pytest
from protocol_data import protocol_data

from benchmarks import http_service


def test_harness_runs_and_reports_ratios(tiny_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = protocol_data(tmp_path)
    recorded: list[str] = []
    monkeypatch.setattr(http_service, "record", lambda name, *_: recorded.append(name))
    argv = ["--store", str(tiny_store), "--model", "tiny", "--data", str(data)]
    counts = ["--requests", "4", "--rounds", "1", "--latency-requests", "5", "--warmup", "2"]
    results = http_service.main([*argv, *counts, "--log", str(tmp_path / "serve.log"), "--record-as", ""])
    assert recorded == []
    assert results["service"]["sentences_per_s"] > 0 and results["bare_onnxruntime"]["sentences_per_s"] > 0
    assert results["throughput_ratio"] > 0 and results["throughput_ratio_vs_request_batches"] > 0
    assert {"p50_ms", "p95_ms"} <= set(results["service"]) and "p50_delta_ms" in results
    # The server wrote JSON access lines with request ids.
    assert '"logger": "xalign.access"' in (tmp_path / "serve.log").read_text()
