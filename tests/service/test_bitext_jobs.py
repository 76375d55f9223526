"""``/v1/bitext/jobs``: mining jobs on the tiny store, in process.

A job gives the pairs ``POST /v1/bitext/mine`` gives on the same input (inline, files, an index); its pairs
page and stream as JSON lines; it can be cancelled queued or running and deleted once finished; each bad
input is refused with the one error body and leaves no job folder behind.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from error_body import assert_error
from fastapi.testclient import TestClient
from serving import inference_gate

from xalign.service.app import create_app
from xalign.service.settings import Settings

SRC = ["the cat sleeps", "i like green tea", "where is the station", "music is loud", "we eat bread", "rain again"]
TGT = ["die katze schlaeft", "rain again today", "ich mag gruenen tee", "wo ist der bahnhof", "bread we eat", "laut"]
MAX_LINES = 20


@pytest.fixture(scope="module")
def settings(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("jobs-data")
    (data / "jobs-input").mkdir()
    return Settings(
        store=tiny_store,
        data_dir=data,
        threads=1,
        poll_interval_s=0,
        max_inputs_per_request=8,
        max_job_texts_per_side=MAX_LINES,
        max_queued_jobs=1,
        job_shard_size=4,  # several shards per side
        job_embed_chunk=2,
    )


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def inputs(settings: Settings) -> Path:
    """The jobs folder: src.txt (SRC with a blank line and a repeat), tgt/ (TGT in two files), too_many.txt."""
    root = settings.data_dir / "jobs-input"
    (root / "src.txt").write_text("\n".join([SRC[0], "", *SRC, SRC[2]]) + "\n", encoding="utf-8")
    (root / "tgt").mkdir()
    (root / "tgt" / "a.txt").write_text("\n".join(TGT[:3]) + "\n", encoding="utf-8")
    (root / "tgt" / "b.txt").write_text("\n".join(TGT[3:]), encoding="utf-8")  # no final newline
    (root / "too_many.txt").write_text("".join(f"line {i}\n" for i in range(MAX_LINES + 1)), encoding="utf-8")
    (root / "empty.txt").write_text("", encoding="utf-8")
    (root / "leak").symlink_to(settings.data_dir)
    return root


def _mine(client: TestClient, src: list[str], tgt: list[str]) -> list[dict[str, Any]]:
    response = client.post("/v1/bitext/mine", json={"src": {"texts": src}, "tgt": {"texts": tgt}})
    assert response.status_code == 200, response.text
    return list(response.json()["pairs"])


def _submit(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/bitext/jobs", json=body)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/bitext/jobs/{job['id']}"
    assert job["state"] in ("queued", "running")
    return dict(job)


def _wait(
    client: TestClient, job_id: str, states: tuple[str, ...] = ("succeeded",), timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/bitext/jobs/{job_id}").json()
        if job["state"] in states:
            return dict(job)
        assert job["state"] in ("queued", "running"), job
        assert time.monotonic() < deadline, f"job still {job['state']}"
        time.sleep(0.05)


def _all_pairs(client: TestClient, job_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/bitext/jobs/{job_id}/pairs", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def _same(job: list[dict[str, Any]], sync: list[dict[str, Any]], ids: bool = True) -> None:
    keys = ("src_id", "tgt_id", "src_text", "tgt_text") if ids else ("src_text", "tgt_text")
    assert [[p[k] for k in keys] for p in job] == [[p[k] for k in keys] for p in sync]
    for a, b in zip(job, sync, strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)
        assert a["cosine"] == pytest.approx(b["cosine"], abs=1e-4)


def _job_folders(settings: Settings) -> set[str]:
    root = settings.data_dir / "jobs"
    return {p.name for p in root.iterdir()} if root.is_dir() else set()


def test_inline_job_gives_the_pairs_of_the_synchronous_route(client: TestClient) -> None:
    job = _submit(client, {"src": {"texts": SRC}, "tgt": {"texts": TGT}, "k": 3})
    done = _wait(client, job["id"])
    assert done["model"] == "tiny:1" and done["variant"] == "fp32"
    assert done["counts"] == {"src_sentences": 6, "src_unique": 6, "tgt_sentences": 6, "tgt_unique": 6,
                              "pairs": done["counts"]["pairs"]}  # fmt: skip
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]
    stages = {p["stage"]: p for p in done["progress"]}
    assert {"embed src", "embed tgt", "knn fwd", "knn bwd", "margin"} <= set(stages)
    assert all(p["done"] == p["total"] for p in stages.values())
    sync = client.post("/v1/bitext/mine", json={"src": {"texts": SRC}, "tgt": {"texts": TGT}, "k": 3}).json()["pairs"]
    _same(_all_pairs(client, job["id"]), sync)
    assert job["id"] in [j["id"] for j in client.get("/v1/bitext/jobs").json()["data"]]


def test_files_job_numbers_sentences_of_the_files(client: TestClient, inputs: Path) -> None:
    job = _submit(client, {"src": {"files": ["src.txt"]}, "tgt": {"files": ["tgt"]}})
    assert job["src"] == {"kind": "files", "lines": 9, "index": None, "files": ["src.txt"]}
    done = _wait(client, job["id"])
    assert (done["counts"]["src_sentences"], done["counts"]["src_unique"]) == (8, 6)
    pairs = _all_pairs(client, job["id"])
    _same(pairs, _mine(client, SRC, TGT), ids=False)
    sentences = [SRC[0], *SRC, SRC[2]]  # the non-blank lines of src.txt; ids name the first occurrence
    assert all(sentences.index(p["src_text"]) == p["src_id"] for p in pairs)
    assert all(TGT[p["tgt_id"]] == p["tgt_text"] for p in pairs)


def test_index_side_keeps_the_index_ids(client: TestClient) -> None:
    assert client.post("/v1/indexes", json={"name": "jobs-tgt", "model": "tiny"}).status_code in (200, 201)
    assert client.post("/v1/indexes/jobs-tgt/texts", json={"texts": TGT}).status_code == 200
    sync = client.post("/v1/bitext/mine", json={"src": {"texts": SRC}, "tgt": {"index": "jobs-tgt"}}).json()["pairs"]
    job = _submit(client, {"src": {"texts": SRC}, "tgt": {"index": "jobs-tgt"}})
    _wait(client, job["id"])
    _same(_all_pairs(client, job["id"]), sync)


def test_pages_and_json_lines(client: TestClient) -> None:
    job = _submit(client, {"src": {"texts": SRC}, "tgt": {"texts": TGT}, "retrieval": "forward"})
    _wait(client, job["id"])
    full = _all_pairs(client, job["id"])
    assert len(full) == len(SRC)
    url = f"/v1/bitext/jobs/{job['id']}/pairs"
    pages, offset = [], 0
    while True:
        page = client.get(url, params={"offset": offset, "limit": 4}).json()
        assert page["total"] == len(full) and page["offset"] == offset
        pages += page["data"]
        offset += len(page["data"])
        if not page["has_more"]:
            break
    assert pages == full
    for kwargs in ({"headers": {"Accept": "application/x-ndjson"}}, {"params": {"format": "jsonl"}}):
        response = client.get(url, **kwargs)  # type: ignore[arg-type]
        assert response.headers["content-type"].startswith("application/x-ndjson")
        assert [json.loads(line) for line in response.text.splitlines()] == full
    lines = client.get(url, params={"format": "jsonl", "offset": 2, "limit": 3}).text.splitlines()
    assert [json.loads(line) for line in lines] == full[2:5]
    assert_error(client.get(url, params={"limit": 1001}), 422, "validation_error", "limit")


def test_cancel_running_and_queued_then_delete(client: TestClient, settings: Settings) -> None:
    entered, release = inference_gate(client.app)  # type: ignore[arg-type]
    try:
        running = _submit(client, {"src": {"texts": SRC}, "tgt": {"texts": TGT}})
        assert entered.wait(30)
        queued = _submit(client, {"src": {"texts": SRC}, "tgt": {"texts": TGT}})
        message = assert_error(client.post("/v1/bitext/jobs", json={"src": {"texts": SRC}, "tgt": {"texts": TGT}}),
                               429, "rate_limit_error")  # fmt: skip
        assert "queued" in message
        before = _job_folders(settings)
        cancelled = client.delete(f"/v1/bitext/jobs/{queued['id']}")
        assert cancelled.status_code == 202 and cancelled.json()["state"] == "cancelled"
        stopping = client.delete(f"/v1/bitext/jobs/{running['id']}")
        assert stopping.status_code == 202 and stopping.json()["cancel_requested"] is True
        assert_error(client.get(f"/v1/bitext/jobs/{running['id']}/pairs"), 409, "conflict_error")
    finally:
        release.set()
    assert _wait(client, running["id"], ("cancelled",))["finished_at"] is not None
    for job_id in (running["id"], queued["id"]):
        deleted = client.delete(f"/v1/bitext/jobs/{job_id}")
        assert deleted.status_code == 200 and deleted.json()["deleted"] is True
        assert_error(client.get(f"/v1/bitext/jobs/{job_id}"), 404, "not_found_error")
    assert _job_folders(settings) == before - {running["id"], queued["id"]}


TEXTS = {"texts": SRC}
BAD: dict[str, tuple[dict[str, Any], int, str, str | None]] = {
    "missing file": ({"src": {"files": ["nope.txt"]}, "tgt": TEXTS}, 404, "not_found_error", "src.files"),
    "absolute path": ({"src": {"files": ["/etc/passwd"]}, "tgt": TEXTS}, 400, "invalid_request_error", "src.files"),
    "dot dot": ({"src": TEXTS, "tgt": {"files": ["tgt/../../x"]}}, 400, "invalid_request_error", "tgt.files"),
    "symlink out": ({"src": {"files": ["leak/jobs"]}, "tgt": TEXTS}, 400, "invalid_request_error", "src.files"),
    "empty file": ({"src": {"files": ["empty.txt"]}, "tgt": TEXTS}, 400, "invalid_request_error", "src"),
    "empty texts": ({"src": {"texts": []}, "tgt": TEXTS}, 400, "invalid_request_error", "src.texts"),
    "line break": ({"src": {"texts": ["a\nb"]}, "tgt": TEXTS}, 400, "invalid_request_error", "src.texts"),
    "unknown index": ({"src": {"index": "nope"}, "tgt": TEXTS}, 404, "not_found_error", "src.index"),
    "unknown model": ({"src": TEXTS, "tgt": TEXTS, "model": "nope"}, 404, "not_found_error", "model"),
    "other variant": ({"src": TEXTS, "tgt": TEXTS, "variant": "int8"}, 422, "validation_error", "variant"),
    "file side too large": ({"src": {"files": ["too_many.txt"]}, "tgt": TEXTS}, 413, "payload_too_large", "src"),
    "inline side too large": ({"src": {"texts": SRC * 2}, "tgt": TEXTS}, 413, "payload_too_large", "src.texts"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_whole(client: TestClient, settings: Settings, inputs: Path, case: str) -> None:
    body, status, error_type, param = BAD[case]
    before = _job_folders(settings)
    assert_error(client.post("/v1/bitext/jobs", json=body), status, error_type, param)
    assert _job_folders(settings) == before


def test_unknown_job(client: TestClient) -> None:
    missing = "0" * 32
    for method, url in (("GET", ""), ("GET", "/pairs"), ("DELETE", "")):
        assert_error(client.request(method, f"/v1/bitext/jobs/{missing}{url}"), 404, "not_found_error")
    assert_error(client.get("/v1/bitext/jobs/not-an-id"), 422, "validation_error")


def test_the_synchronous_route_points_to_the_jobs(client: TestClient) -> None:
    message = assert_error(client.post("/v1/bitext/mine", json={"src": {"texts": SRC * 2}, "tgt": TEXTS}),
                           413, "payload_too_large", "src.texts")  # fmt: skip
    assert "POST /v1/bitext/jobs" in message
    described = client.get("/openapi.json").json()["paths"]["/v1/bitext/mine"]["post"]["description"]
    assert "POST /v1/bitext/jobs" in described
