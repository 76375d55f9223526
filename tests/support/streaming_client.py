"""A client that streams requests at a running service until stopped, recording every answer.

Used where a swap, a rollback or a restart must cost no request: tests/e2e/test_compose_loop.py (the compose
services as processes) and deploy/smoke/traffic.py (the same services in containers).
"""

from __future__ import annotations

import threading
from typing import Any

import httpx


class StreamingClient(threading.Thread):
    """Sends ``requests`` (route, JSON body) in turn until stopped; records (route, status, model) per answer."""

    def __init__(self, base_url: str, requests: list[tuple[str, dict[str, Any]]]) -> None:
        super().__init__(daemon=True)
        self.base_url, self.requests = base_url, requests
        self.answers: list[tuple[str, int, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=60) as client:
            for i in range(10**9):
                if self.stop.is_set():
                    return
                route, body = self.requests[i % len(self.requests)]
                try:
                    response = client.post(route, json=body)
                except httpx.TransportError as exc:  # a dropped connection is a failed request too
                    self.answers.append((route, 0, type(exc).__name__))
                    continue
                self.answers.append((route, response.status_code, response.json().get("model", response.text)))

    def embedding_models(self) -> list[str]:
        """The model of every embedding answer so far."""
        return [model for route, _, model in list(self.answers) if route == "/v1/embeddings"]

    def failures(self) -> list[tuple[str, int, str]]:
        """Every answer that was not a 200."""
        return [answer for answer in list(self.answers) if answer[1] != 200]
