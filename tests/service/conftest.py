"""The ASGI app over the session's tiny store, with its lifespan run (models really load)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from xalign.service.app import create_app
from xalign.service.settings import Settings


@pytest.fixture(scope="module")
def settings(tiny_store: Path) -> Settings:
    return Settings(store=tiny_store, threads=1, max_inputs_per_request=8, max_chars_per_input=200)


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    # raise_server_exceptions=False: the 500 path must answer like the real server does.
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client
