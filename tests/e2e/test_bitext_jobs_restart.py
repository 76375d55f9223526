"""A mining job survives its server: ``xalign-serve`` killed with SIGKILL in the middle of a job and started
again resumes the job from its work folder, reusing the shards it had finished, and the job ends with the
pairs of an uninterrupted run of the same job; a finished job survives the restart too."""

from __future__ import annotations

import json
import os
import random
import signal
import string
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from processes import free_port, running, wait_for, wait_ready

LINES = 1500
SHARD = 100


def _sentences(seed: int) -> str:
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 8))) for _ in range(400)]
    return "".join(" ".join(rng.choices(words, k=rng.randint(3, 12))) + "\n" for _ in range(LINES))


@contextmanager
def _server(store: Path, data: Path, log: Path) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("xalign-serve")),
        *("--store", str(store), "--data-dir", str(data), "--port", str(port)),
        *("--threads", "1", "--poll-interval-s", "0", "--job-shard-size", str(SHARD), "--job-embed-chunk", "4"),
    ]
    with running(command, log) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proc, log, timeout=120)
        with httpx.Client(base_url=base, timeout=30) as client:
            yield client, proc


def _job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/bitext/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _finished(client: httpx.Client, job_id: str, timeout: float = 600) -> dict[str, Any]:
    wait_for(lambda: _job(client, job_id)["state"] not in ("queued", "running"), timeout, f"job {job_id}")
    job = _job(client, job_id)
    assert job["state"] == "succeeded", job
    return job


def _pairs(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/bitext/jobs/{job_id}/pairs", params={"format": "jsonl"})
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def _shards(data: Path, job_id: str) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (data / "jobs" / job_id / "work" / "embeddings").rglob("shard-*.npy")}


def test_a_killed_server_resumes_its_job_with_the_same_pairs(tiny_store: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "jobs-input").mkdir(parents=True)
    (data / "jobs-input" / "src.txt").write_text(_sentences(1), encoding="utf-8")
    (data / "jobs-input" / "tgt.txt").write_text(_sentences(2), encoding="utf-8")
    body = {"src": {"files": ["src.txt"]}, "tgt": {"files": ["tgt.txt"]}, "model": "tiny"}
    with _server(tiny_store, data, tmp_path / "first.log") as (client, proc):
        reference = client.post("/v1/bitext/jobs", json=body).json()["id"]
        _finished(client, reference)
        expected = _pairs(client, reference)
        killed = client.post("/v1/bitext/jobs", json=body).json()["id"]
        # Mid-job: some shards of the source side embedded, the target side not yet.
        wait_for(lambda: len(_shards(data, killed)) >= 3, 300, "three shards of the second job")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    on_disk = json.loads((data / "jobs" / killed / "job.json").read_text(encoding="utf-8"))
    assert on_disk["state"] == "running"
    kept = _shards(data, killed)
    assert 3 <= len(kept) < 2 * LINES // SHARD
    with _server(tiny_store, data, tmp_path / "second.log") as (client, _):
        assert _job(client, reference)["state"] == "succeeded"
        job = _finished(client, killed)
        resumed = {p["stage"]: p for p in job["progress"]}
        assert resumed["embed src"]["done"] == resumed["embed src"]["total"]
        pairs = _pairs(client, killed)
        assert _pairs(client, reference) == expected
    assert {p: _shards(data, killed)[p] for p in kept} == kept, "finished shards were embedded again"
    assert [(p["src_id"], p["tgt_id"], p["src_text"], p["tgt_text"]) for p in pairs] == [
        (p["src_id"], p["tgt_id"], p["src_text"], p["tgt_text"]) for p in expected
    ]
    for got, want in zip(pairs, expected, strict=True):
        assert got["score"] == pytest.approx(want["score"], abs=1e-5)
        assert got["cosine"] == pytest.approx(want["cosine"], abs=1e-5)
