"""A real ``xalign-serve`` writes only its own folders: nothing under the home folder after a start and requests.

onnxruntime (1.2x) starts its telemetry when imported and keeps a device id and an event database under
``$XDG_CACHE_HOME`` or ``~/.cache/Microsoft/DeveloperTools/.onnxruntime``; ``xalign-serve`` turns that off.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import httpx
import pytest
from processes import free_port, running, wait_ready

DOCS = ["a dog runs in the park", "ein Hund rennt im Park"]


def test_the_service_writes_nothing_under_home(
    tiny_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copytree(tiny_store, tmp_path / "store")
    # The test proves the service turns telemetry off, not that the caller's environment did.
    monkeypatch.delenv("ORT_DISABLE_TELEMETRY", raising=False)
    xdg = {f"XDG_{kind}_HOME": str(home / f".{kind.lower()}") for kind in ("CACHE", "CONFIG", "DATA", "STATE")}
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("xalign-serve")),
        *("--store", str(tmp_path / "store"), "--port", str(port), "--threads", "1"),
        *("--poll-interval-s", "0", "--data-dir", str(tmp_path / "data")),
    ]
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with running(command, log, env={"HOME": str(home), **xdg}) as proc:
        wait_ready(base_url, proc, log, timeout=120)
        with httpx.Client(base_url=base_url, timeout=30) as client:
            assert client.post("/v1/embeddings", json={"model": "tiny", "input": DOCS}).status_code == 200
            assert client.post("/v1/indexes", json={"name": "docs", "model": "tiny"}).status_code == 201
            assert client.post("/v1/indexes/docs/texts", json={"texts": DOCS}).status_code == 200
            assert client.post("/v1/indexes/docs/search", json={"query": "dog", "k": 1}).status_code == 200
            assert client.get("/metrics").status_code == 200
    assert proc.returncode is not None
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == []
    assert (tmp_path / "data").is_dir()  # the indexes went where they belong
