"""Server-side connection deadlines against a real ``xalign-serve`` process, over raw sockets.

The server runs with small timeouts (keep-alive 1 s, headers and body 2 s). A connection that sends nothing, a
kept-alive connection left idle, a client trickling its headers and one trickling its body are all cut off
within a bound well below what the client would otherwise hold (uvicorn alone keeps the first three open for
as long as the client likes, and the idle one for 5 s); a normal client is not disturbed.
"""

from __future__ import annotations

import json
import select
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from processes import free_port, running, wait_ready

KEEP_ALIVE_S = 1.0
HEADER_S = 2.0
BODY_S = 2.0
# Wide margins for a loaded machine; still well below what an unguarded server allows.
CUT_OFF_WITHIN_S = 4.0
TRICKLE_FOR_S = 15.0
TRICKLE_EVERY_S = 0.25


@pytest.fixture(scope="module")
def server(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """(host, port) of a live server with small connection timeouts."""
    root = tmp_path_factory.mktemp("timeouts")
    shutil.copytree(tiny_store, root / "store")
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("xalign-serve")),
        *("--store", str(root / "store"), "--port", str(port), "--threads", "1"),
        *("--poll-interval-s", "0", "--data-dir", str(root / "data")),
        *("--keep-alive-timeout-s", str(KEEP_ALIVE_S), "--header-timeout-s", str(HEADER_S)),
        *("--body-timeout-s", str(BODY_S)),
    ]
    log = root / "serve.log"
    with running(command, log) as proc:
        wait_ready(f"http://127.0.0.1:{port}", proc, log, timeout=120)
        yield "127.0.0.1", port


def _connect(server: tuple[str, int]) -> socket.socket:
    return socket.create_connection(server, timeout=30)


def _read_until_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed (seconds from now); fails past limit_s."""
    start = time.monotonic()
    received = b""
    while time.monotonic() - start < limit_s:
        readable, _, _ = select.select([sock], [], [], 0.1)
        if not readable:
            continue
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return received, time.monotonic() - start
        received += chunk
    raise AssertionError(f"connection still open after {limit_s} s; received {received[:200]!r}")


def _trickle(sock: socket.socket, head: bytes, piece: bytes) -> float:
    """Send ``head``, then ``piece`` every TRICKLE_EVERY_S until the server answers or closes; seconds taken."""
    start = time.monotonic()
    sock.sendall(head)
    while time.monotonic() - start < TRICKLE_FOR_S:
        if select.select([sock], [], [], TRICKLE_EVERY_S)[0]:
            break  # an answer or the close
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
    return time.monotonic() - start


def _assert_408(answer: bytes, what: str) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"connection: close" in head.lower()
    error = json.loads(body)["error"]
    assert error["type"] == "request_timeout" and what in error["message"], error


def test_a_connection_that_sends_nothing_is_closed(server: tuple[str, int]) -> None:
    with _connect(server) as sock:
        answer, closed_after = _read_until_closed(sock, limit_s=CUT_OFF_WITHIN_S + HEADER_S)
    assert answer == b""  # nothing was asked, nothing is answered
    assert closed_after >= HEADER_S * 0.9


def test_an_idle_kept_alive_connection_is_closed(server: tuple[str, int]) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        time.sleep(0.2)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        rest, closed_after = _read_until_closed(sock, limit_s=CUT_OFF_WITHIN_S)
    assert rest == b""
    assert closed_after >= KEEP_ALIVE_S * 0.5  # the response took some of it


def test_a_client_trickling_headers_is_cut_off(server: tuple[str, int]) -> None:
    with _connect(server) as sock:
        took = _trickle(sock, b"GET /health HTTP/1.1\r\nHost: test\r\n", b"X-Slow: 1\r\n")
        answer, _ = _read_until_closed(sock, limit_s=CUT_OFF_WITHIN_S)
    assert took < HEADER_S + CUT_OFF_WITHIN_S, took
    _assert_408(answer, "headers")


def test_a_client_trickling_its_body_is_cut_off(server: tuple[str, int]) -> None:
    head = (
        b"POST /v1/embeddings HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    with _connect(server) as sock:
        took = _trickle(sock, head, b" ")
        answer, _ = _read_until_closed(sock, limit_s=CUT_OFF_WITHIN_S)
    assert took < BODY_S + CUT_OFF_WITHIN_S, took
    _assert_408(answer, "body")


def test_normal_requests_on_a_kept_alive_connection_still_work(server: tuple[str, int]) -> None:
    host, port = server
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=30) as client:
        for _ in range(3):
            response = client.post("/v1/embeddings", json={"model": "tiny", "input": ["hello", "Hallo"]})
            assert response.status_code == 200, response.text
            time.sleep(KEEP_ALIVE_S / 4)  # reuses the connection: well inside the keep-alive timeout
        assert client.get("/health").status_code == 200
