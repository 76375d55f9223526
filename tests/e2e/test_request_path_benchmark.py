"""Smoke test of ``benchmarks/request_path.py`` on the tiny store: the instrumented server marks every stage."""

from __future__ import annotations

from pathlib import Path

import pytest
from protocol_data import protocol_data

from benchmarks import request_path


def test_every_stage_of_the_request_path_is_timed(
    tiny_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = protocol_data(tmp_path)
    recorded: list[str] = []
    monkeypatch.setattr(request_path, "record", lambda name, *_: recorded.append(name))
    argv = ["--store", str(tiny_store), "--model", "tiny:1", "--data", str(data)]
    results = request_path.main([*argv, "--requests", "12", "--warmup", "4", "--log", str(tmp_path / "serve.log")])
    assert recorded == ["request_path_fp32"]
    stages = results["server_stages_ms"]
    # A renamed function would leave its mark unset and the request out of the medians: every stage is there.
    assert list(stages) == [f"{a}->{b}" for a, b in zip(request_path.MARKS, request_path.MARKS[1:], strict=False)] + [
        "total"
    ]
    assert all(value >= 0 for value in stages.values()) and stages["infer->inferred"] > 0
    assert 0 < stages["total"] < results["client_p50_ms"] and results["bare_p50_ms"] > 0
