"""A bounded load test against a real ``xalign-serve`` process on the tiny model (the scenario of
benchmarks/results/overload.md, smaller): 16 clients for 20 s, half mining 200 x 200 inline sides, half
embedding 200 texts. The service keeps answering: no request waits past its deadline (plus a margin for the work
itself), every 429 and 503 carries Retry-After, the queue gauge polled from ``/metrics`` never exceeds its
bound, and once the load ends a one-text request answers within seconds. The figures are printed (run with
``-s`` to see them)."""

from __future__ import annotations

import re
import shutil
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from processes import free_port, running, wait_ready
from word_texts import WORDS

CLIENTS = 16
LOAD_S = 20.0
SIDE = 200
QUEUE_TIMEOUT_S = 5.0
MAX_QUEUE_TOKENS = 40_000
MAX_QUEUE_TEXTS = 1024  # the default max_queue
# A request that started just before its deadline still runs its own batches (and the client parses).
MARGIN_S = 15.0
CLIENT_TIMEOUT_S = 120.0


def _texts(seed: int, n: int) -> list[str]:
    return [" ".join(WORDS[(seed + i + j) % len(WORDS)] for j in range(3 + (seed + i) % 9)) for i in range(n)]


@dataclass
class Record:
    """What the clients and the metrics poller saw."""

    answers: list[tuple[str, int, float, bool]] = field(default_factory=list)  # kind, status, seconds, Retry-After
    errors: list[str] = field(default_factory=list)  # transport errors (client timeouts)
    max_queue_tokens: float = 0.0
    max_queue_texts: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(base_url: str, kind: str, seed: int, stop: threading.Event, record: Record) -> None:
    """Send one kind of request back to back until ``stop``, honouring Retry-After only by a short pause."""
    body: dict[str, object]
    if kind == "mine":
        path, body = "/v1/bitext/mine", {"src": {"texts": _texts(seed, SIDE)}, "tgt": {"texts": _texts(seed + 1, SIDE)}}
    else:
        path, body = "/v1/embeddings", {"input": _texts(seed, SIDE)}
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        while not stop.is_set():
            start = time.monotonic()
            try:
                response = client.post(path, json=body)
            except httpx.TransportError as exc:
                with record.lock:
                    record.errors.append(type(exc).__name__)
                continue
            seconds = time.monotonic() - start
            with record.lock:
                record.answers.append((kind, response.status_code, seconds, "retry-after" in response.headers))
            if response.status_code in (429, 503):
                time.sleep(0.1)  # an impatient client: retries well before Retry-After


_GAUGE = re.compile(r'^(xalign_queue_(?:tokens|texts))\{model="tiny"\} ([0-9.e+]+)$', re.MULTILINE)


def _poll_metrics(base_url: str, stop: threading.Event, record: Record) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        while not stop.is_set():
            try:
                text = client.get("/metrics").text
            except httpx.TransportError:
                continue
            for name, value in _GAUGE.findall(text):
                if name == "xalign_queue_tokens":
                    record.max_queue_tokens = max(record.max_queue_tokens, float(value))
                else:
                    record.max_queue_texts = max(record.max_queue_texts, float(value))
            time.sleep(0.1)


def _percentile(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def _figures(record: Record, after_s: float) -> str:
    statuses = [status for _, status, _, _ in record.answers]
    lines = [f"requests {len(statuses)}, client errors {len(record.errors)}"]
    for kind in ("mine", "embed"):
        mine = [a for a in record.answers if a[0] == kind]
        ok = [s for _, status, s, _ in mine if status == 200]
        counts = {code: sum(1 for a in mine if a[1] == code) for code in sorted({a[1] for a in mine})}
        lines.append(
            f"{kind}: {counts}; 200 latency p50 {_percentile(ok, 50):.2f} s p99 {_percentile(ok, 99):.2f} s; "
            f"all answers p99 {_percentile([a[2] for a in mine], 99):.2f} s"
        )
    lines.append(f"max queue gauge: {record.max_queue_tokens:.0f} tokens, {record.max_queue_texts:.0f} texts")
    lines.append(f"one-text request after the load: {after_s:.2f} s")
    return "\n".join(lines)


def test_overload_keeps_the_service_answering(tiny_store: Path, tmp_path: Path) -> None:
    store, port = tmp_path / "store", free_port()
    shutil.copytree(tiny_store, store)
    base_url = f"http://127.0.0.1:{port}"
    serve = str(Path(sys.executable).with_name("xalign-serve"))
    command = [serve, "--store", str(store), "--host", "127.0.0.1", "--port", str(port), "--threads", "1"]
    env = {
        "XALIGN_POLL_INTERVAL_S": "0",
        "XALIGN_DATA_DIR": str(tmp_path / "data"),
        "XALIGN_MAX_INPUTS_PER_REQUEST": str(2 * SIDE),
        "XALIGN_QUEUE_TIMEOUT_S": str(QUEUE_TIMEOUT_S),
        "XALIGN_MAX_QUEUE_TOKENS": str(MAX_QUEUE_TOKENS),
        "XALIGN_LOG_LEVEL": "warning",
    }
    log = tmp_path / "serve.log"
    record = Record()
    with running(command, log, env) as proc:
        wait_ready(base_url, proc, log, timeout=120)
        stop, poller_stop = threading.Event(), threading.Event()
        poller = threading.Thread(target=_poll_metrics, args=(base_url, poller_stop, record))
        clients = [
            threading.Thread(target=_client, args=(base_url, "mine" if i % 2 == 0 else "embed", i, stop, record))
            for i in range(CLIENTS)
        ]
        poller.start()
        for thread in clients:
            thread.start()
        time.sleep(LOAD_S)
        stop.set()
        for thread in clients:
            thread.join(CLIENT_TIMEOUT_S + 10)
        start = time.monotonic()
        after = httpx.post(f"{base_url}/v1/embeddings", json={"input": ["one text"]}, timeout=CLIENT_TIMEOUT_S)
        after_s = time.monotonic() - start
        time.sleep(0.3)
        poller_stop.set()
        poller.join(20)
    print(f"\noverload figures ({CLIENTS} clients x {LOAD_S:.0f} s, sides {SIDE}):\n{_figures(record, after_s)}")
    assert after.status_code == 200
    assert after_s < 5.0, f"one text took {after_s:.1f} s after the load"
    assert record.errors == [], "requests timed out in the client"
    statuses = {status for _, status, _, _ in record.answers}
    assert statuses <= {200, 429, 503}, statuses
    assert any(kind == "mine" and status == 200 for kind, status, _, _ in record.answers), "no mining succeeded"
    assert all(has for _, status, _, has in record.answers if status in (429, 503)), "a refusal without Retry-After"
    assert max(s for _, _, s, _ in record.answers) <= QUEUE_TIMEOUT_S + MARGIN_S
    assert 0 < record.max_queue_tokens <= MAX_QUEUE_TOKENS
    assert record.max_queue_texts <= MAX_QUEUE_TEXTS
    assert "Traceback" not in log.read_text()
