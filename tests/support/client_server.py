"""The live server of the client's tests (``tests/client``): its keys and settings, and the app with its URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from serving import real_server

from xalign.service.settings import Settings

READ_KEY = "sk-client-read"
ADMIN_KEY = "sk-client-admin"


@dataclass(frozen=True)
class Live:
    """The served app (for its state: the inference gate, metrics) and its base URL."""

    app: FastAPI
    base_url: str


def live_settings(store: Path, data: Path, **overrides: Any) -> Settings:
    """One thread, no polling, a read key and an admin key; ``overrides`` replace any of them."""
    fields: dict[str, Any] = {
        "store": store,
        "data_dir": data,
        "threads": 1,
        "poll_interval_s": 0,
        "api_keys": [READ_KEY],
        "admin_api_keys": [ADMIN_KEY],
        "max_inputs_per_request": 8,
    }
    return Settings(**(fields | overrides))


@contextmanager
def live_server(store: Path, data: Path, **overrides: Any) -> Iterator[Live]:
    """The app over ``store`` behind real uvicorn on a free loopback port (``serving.real_server``)."""
    with real_server(live_settings(store, data, **overrides)) as (app, port):
        yield Live(app, f"http://127.0.0.1:{port}")
