"""Fixtures of the client's tests: a live server over a copy of the tiny store, and both client flavours."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from client_flavours import FLAVOURS
from client_server import Live, live_server


@pytest.fixture(scope="module")
def live(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A server (real uvicorn in a thread) over a copy of the tiny store (``tiny`` version 1), keys required."""
    root = tmp_path_factory.mktemp("client-live")
    shutil.copytree(tiny_store, root / "store")
    with live_server(root / "store", root / "data") as served:
        yield served


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    """``sync`` (``Client``) or ``async`` (``AsyncClient``): every test using it runs with both."""
    return str(request.param)
