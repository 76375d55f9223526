"""Retries: 429 and 503 are sent again honouring Retry-After, then with jittered exponential backoff; no other
status is; connection errors are retried for idempotent calls only. Against a live server whose queue is held
full, and, for exact timings and failures a real server will not produce on demand, a scripted HTTP server."""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from client_flavours import AnyClient, run_with, settle
from client_server import ADMIN_KEY, Live, live_server
from scripted_http import DROP, Answer, scripted_server
from serving import inference_gate

from xalign.client import (
    APIConnectionError,
    ConflictError,
    IndexInfo,
    InternalServerError,
    ModelList,
    NotFoundError,
    RateLimitError,
    ServiceUnavailableError,
)
from xalign.client.retries import RetryPolicy

MODELS = {"object": "list", "data": [], "errors": {}, "failures": {}, "added_in_a_later_version": True}
INDEX = {
    "object": "index", "name": "news", "model": "tiny", "model_version": 1, "dim": 32, "kind": "flat",
    "params": {}, "count": 0, "device": "cpu", "created_at": "2025-01-01T00:00:00Z",
}  # fmt: skip


class Recording(httpx.HTTPTransport):
    """A real transport that notes when each response came and its status."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, int, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.seen.append((time.monotonic(), response.status_code, request.headers["x-request-id"]))
        return response


class AsyncRecording(httpx.AsyncHTTPTransport):
    """:class:`Recording` for the async client."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, int, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        self.seen.append((time.monotonic(), response.status_code, request.headers["x-request-id"]))
        return response


@pytest.fixture(scope="module")
def overloadable(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A live server whose model queue holds one text."""
    root = tmp_path_factory.mktemp("client-overload")
    shutil.copytree(tiny_store, root / "store")
    with live_server(root / "store", root / "data", max_queue=1) as served:
        yield served


def _queued(live: Live) -> float:
    value = live.app.state.metrics.registry.get_sample_value("xalign_queue_texts", {"model": "tiny"})
    return float(value or 0)


def _fill_queue(live: Live) -> tuple[threading.Event, list[threading.Thread]]:
    """One request held in inference and one queued behind it: the queue (one text) is full until release."""
    entered, release = inference_gate(live.app)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}

    def post(text: str) -> None:
        httpx.post(f"{live.base_url}/v1/embeddings", json={"input": [text]}, headers=headers, timeout=60)

    threads = [threading.Thread(target=post, args=(text,)) for text in ("held", "queued")]
    threads[0].start()
    assert entered.wait(20)
    threads[1].start()
    deadline = time.monotonic() + 20
    while _queued(live) < 1:
        assert time.monotonic() < deadline, "the second request was not queued"
        time.sleep(0.01)
    return release, threads


def test_a_full_queue_is_retried_after_retry_after(overloadable: Live, flavour: str) -> None:
    release, threads = _fill_queue(overloadable)
    advised: list[float] = []

    async def refused(client: AnyClient) -> None:
        with pytest.raises(RateLimitError) as caught:
            await settle(client.embed(["refused"]))
        assert (caught.value.status, caught.value.code) == (429, "queue_full")
        assert caught.value.retry_after is not None and caught.value.retry_after >= 1
        advised.append(caught.value.retry_after)

    async def retried(client: AnyClient) -> None:
        threading.Timer(0.3, release.set).start()  # the queue drains while the client waits
        vectors = await settle(client.embed(["retried"]))
        assert vectors.shape == (1, 32)

    try:
        run_with(flavour, refused, overloadable.base_url, api_key=ADMIN_KEY, max_retries=0)
        transport = Recording() if flavour == "sync" else AsyncRecording()
        run_with(flavour, retried, overloadable.base_url, api_key=ADMIN_KEY, transport=transport)
    finally:
        release.set()
        for thread in threads:
            thread.join(60)
    (first, status, first_id), (second, final, second_id) = transport.seen
    assert (status, final) == (429, 200)
    assert first_id == second_id  # one request id for every attempt
    assert second - first >= advised[0] - 0.05


def _scripted(flavour: str, answers: list[Answer], scenario: Any, **options: Any) -> list[float]:
    """Run ``scenario`` against a server answering ``answers``; the gaps between its requests."""
    with scripted_server(answers) as (url, script):
        run_with(flavour, scenario, url, **options)
        assert len({seen.request_id for seen in script.seen}) == 1
        return script.gaps()


def test_retry_after_is_honoured(flavour: str) -> None:
    async def scenario(client: AnyClient) -> None:
        models = await settle(client.models.list())
        assert isinstance(models, ModelList) and models.data == []  # an unknown field is ignored

    answers = [
        Answer(429, headers={"retry-after": "1"}),
        Answer(503, headers={"retry-after": "0.6"}),
        Answer(200, MODELS),
    ]
    gaps = _scripted(flavour, answers, scenario)
    assert len(gaps) == 2
    # At least what the server advised; the upper bounds leave room for a loaded machine.
    assert 1.0 <= gaps[0] < 2.5
    assert 0.6 <= gaps[1] < 2.1


def test_backoff_without_retry_after_grows_with_jitter(flavour: str) -> None:
    async def scenario(client: AnyClient) -> None:
        assert isinstance(await settle(client.models.list()), ModelList)

    gaps = _scripted(flavour, [Answer(503), Answer(503), Answer(200, MODELS)], scenario)
    # RetryPolicy's defaults: 0.5 s then 1 s, each 75-100 % of that (the second at least the first's most: growth).
    assert 0.375 <= gaps[0] < 0.5 + 1.5
    assert 0.75 <= gaps[1] < 1.0 + 1.5


def test_gives_up_after_max_retries(flavour: str) -> None:
    async def scenario(client: AnyClient) -> None:
        with pytest.raises(ServiceUnavailableError) as caught:
            await settle(client.models.list())
        assert (caught.value.retry_after, caught.value.code) == (0, "not_ready")

    body = {"error": {"type": "service_unavailable", "code": "not_ready", "message": "loading", "param": None}}
    gaps = _scripted(flavour, [Answer(503, body, {"retry-after": "0"})], scenario, max_retries=2)
    assert len(gaps) == 2  # three requests


def test_a_retry_after_past_the_limit_is_not_waited_for(flavour: str) -> None:
    async def scenario(client: AnyClient) -> None:
        started = time.monotonic()
        with pytest.raises(RateLimitError) as caught:
            await settle(client.models.list())
        assert caught.value.retry_after == 3600
        assert time.monotonic() - started < 5

    assert _scripted(flavour, [Answer(429, headers={"retry-after": "3600"})], scenario) == []


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, NotFoundError), (409, ConflictError), (500, InternalServerError), (502, InternalServerError)],
)
def test_other_statuses_are_not_retried(flavour: str, status: int, error: type[Exception]) -> None:
    body = {"error": {"type": "t", "code": "some_code", "message": "it failed", "param": "p"}}

    async def scenario(client: AnyClient) -> None:
        with pytest.raises(error) as caught:
            await settle(client.models.list())
        assert (caught.value.status, caught.value.code, caught.value.message) == (status, "some_code", "it failed")  # type: ignore[attr-defined]

    assert _scripted(flavour, [Answer(status, body)], scenario) == []


def test_connection_errors_are_retried_for_idempotent_calls_only(flavour: str) -> None:
    async def read(client: AnyClient) -> None:
        assert isinstance(await settle(client.models.list()), ModelList)

    async def create(client: AnyClient) -> None:
        with pytest.raises(APIConnectionError):
            await settle(client.indexes.create("news"))

    async def create_after_429(client: AnyClient) -> None:
        assert isinstance(await settle(client.indexes.create("news")), IndexInfo)

    assert len(_scripted(flavour, [DROP, DROP, Answer(200, MODELS)], read)) == 2
    assert _scripted(flavour, [DROP, Answer(200, INDEX)], create) == []  # it may have been created: not resent
    # A 429 comes before any work: even a call that creates state is sent again.
    assert (
        len(_scripted(flavour, [Answer(429, headers={"retry-after": "0"}), Answer(200, INDEX)], create_after_429)) == 1
    )


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(max_retries=10, initial_delay=0.5, max_delay=8.0, rng=random.Random(0))
    delays = [policy.backoff(attempt) for attempt in range(8)]
    for attempt, delay in enumerate(delays):
        base = min(8.0, 0.5 * 2**attempt)
        assert 0.75 * base <= delay <= base
    assert len(set(delays[-3:])) == 3  # capped, yet not in lockstep
    assert policy.after_error(10, idempotent=True) is None
    assert policy.after_error(0, idempotent=False) is None
