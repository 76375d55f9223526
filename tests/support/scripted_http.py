"""A real HTTP server on a free loopback port that answers from a script: for clients' retry and error handling.

Each request takes the next answer of the script (the last one repeats): a status with headers and a JSON body,
or ``DROP`` (the connection closes with no response). Every request is recorded with its arrival time.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple


@dataclass(frozen=True)
class Answer:
    """One scripted response; ``drop`` closes the connection without one."""

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


DROP = Answer(drop=True)


class Seen(NamedTuple):
    """A request as the server received it: its ``X-Request-Id`` and when it came (``time.monotonic()``)."""

    request_id: str
    at: float


@dataclass
class Script:
    """The answers still to give and the requests received so far."""

    answers: list[Answer]
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, request: Seen) -> Answer:
        with self.lock:
            self.seen.append(request)
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def gaps(self) -> list[float]:
        """Seconds between consecutive requests."""
        times = [s.at for s in self.seen]
        return [b - a for a, b in itertools.pairwise(times)]


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            seen = Seen(self.headers.get("x-request-id", ""), time.monotonic())
            answer = script.next(seen)
            if answer.drop:
                self.close_connection = True
                return
            payload = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            for name, value in {"content-type": "application/json", **answer.headers}.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _answer  # noqa: N815 - http.server's handler names

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test reads Script.seen

    return Handler


@contextmanager
def scripted_server(answers: Sequence[Answer]) -> Iterator[tuple[str, Script]]:
    """Serve ``answers`` on 127.0.0.1; yields the base URL and the script (its ``seen`` requests)."""
    script = Script(list(answers))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
