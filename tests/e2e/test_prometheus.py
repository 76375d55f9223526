"""The monitoring profile with keys, for real: Debian's Prometheus scrapes a real ``xalign-serve`` that has keys.

Prometheus runs with the repository's ``deploy/prometheus.yml``, changed only where the compose network differs
from loopback: the target (``api:8000`` → the server's free port), the key file (the compose secret's
``/run/secrets/…`` → a temp file holding the api's read key) and a 1 s scrape interval so the test is short.
The assertions go through Prometheus' own HTTP API: the target is ``up`` and the service's request counter
rose by the requests the test sent. ``make test`` installs the package when it runs as root; elsewhere the test
is skipped, except with ``CI=true`` where a missing binary fails.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from compose_file import COMPOSE, load
from fastapi.testclient import TestClient
from processes import REPO, free_port, running, wait_ready

from xalign.service.app import create_app
from xalign.service.settings import Settings

READ_KEY = "scrape-test-read-key"
ADMIN_KEY = "scrape-test-admin-key"
CONFIG = REPO / "deploy" / "prometheus.yml"
COUNTER = 'sum(xalign_requests_total{route="/v1/embeddings",method="POST",status="200"})'
WAIT_S = 90.0
T = TypeVar("T")


def _prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        reason = "no prometheus binary: install Debian's prometheus package (make test does so when run as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def _eventually(probe: Callable[[], T | None], what: str, timeout: float = WAIT_S) -> T:
    """Poll ``probe`` until it returns something other than None; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result is not None:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{what}: not seen within {timeout} s")


def _loopback_config(api_port: int, key_file: Path) -> dict[str, Any]:
    """deploy/prometheus.yml with the loopback target, the temp key file and a 1 s scrape interval."""
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    (job,) = config["scrape_configs"]
    assert job.pop("dns_sd_configs")[0]["names"] == ["api"]  # every replica in compose; here the one api
    assert job["authorization"]["type"] == "Bearer"
    job["static_configs"] = [{"targets": [f"127.0.0.1:{api_port}"]}]
    job["authorization"]["credentials_file"] = str(key_file)
    config["global"]["scrape_interval"] = "1s"
    return config


def test_the_scrape_key_file_is_the_compose_secret() -> None:
    # The path prometheus.yml reads is where compose mounts the secret, and the default secret file exists.
    job = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["scrape_configs"][0]
    compose = load(COMPOSE)
    (secret,) = compose["services"]["prometheus"]["secrets"]
    assert job["authorization"]["credentials_file"] == f"/run/secrets/{secret}"
    default_file = compose["secrets"][secret]["file"].split(":-", 1)[1].rstrip("}")
    assert (COMPOSE.parent / default_file).is_file()


def test_the_default_empty_key_file_still_scrapes_a_service_without_keys(tiny_store: Path, tmp_path: Path) -> None:
    # With the empty default secret Prometheus sends "Authorization: Bearer" and nothing after it (seen with
    # Debian's 2.42): a service without keys must answer /metrics all the same.
    settings = Settings(store=tiny_store, threads=1, data_dir=tmp_path / "data", poll_interval_s=0)
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics", headers={"Authorization": "Bearer"}).status_code == 200


@pytest.fixture(scope="module")
def api(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a live server with read and admin keys."""
    root = tmp_path_factory.mktemp("prometheus-api")
    shutil.copytree(tiny_store, root / "store")
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("xalign-serve")),
        *("--store", str(root / "store"), "--port", str(port), "--threads", "1"),
        *("--poll-interval-s", "0", "--data-dir", str(root / "data")),
    ]
    keys = {"XALIGN_API_KEYS": f'["{READ_KEY}"]', "XALIGN_ADMIN_API_KEYS": f'["{ADMIN_KEY}"]'}
    log = root / "serve.log"
    with running(command, log, env=keys) as proc:
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(base_url, proc, log, timeout=120)
        yield base_url


def _embed(api: str, n: int) -> None:
    with httpx.Client(base_url=api, timeout=30, headers={"Authorization": f"Bearer {READ_KEY}"}) as client:
        for i in range(n):
            response = client.post("/v1/embeddings", json={"model": "tiny", "input": [f"request {i}"]})
            assert response.status_code == 200, response.text


def _api(prometheus: str, path: str, **params: str) -> Any:
    """``data`` of a Prometheus API answer; None while Prometheus is not listening or not ready yet."""
    try:
        response = httpx.get(f"{prometheus}/api/v1/{path}", params=params, timeout=5)
    except httpx.TransportError:
        return None
    # While its storage starts, Prometheus listens but answers 503 with a plain-text body (seen in CI).
    return response.json()["data"] if response.status_code == 200 else None


def _target(prometheus: str) -> dict[str, Any] | None:
    data = _api(prometheus, "targets")
    targets = data["activeTargets"] if data else []
    return targets[0] if targets and targets[0]["health"] == "up" else None


def _counter(prometheus: str, at_least: float) -> float | None:
    data = _api(prometheus, "query", query=COUNTER)
    result = data["result"] if data else []
    value = float(result[0]["value"][1]) if result else None
    return value if value is not None and value >= at_least else None


def test_prometheus_scrapes_the_service_with_its_key(api: str, tmp_path: Path) -> None:
    binary = _prometheus_binary()
    assert httpx.get(f"{api}/metrics", timeout=10).status_code == 401  # keys are on: no key, no metrics
    key_file = tmp_path / "scrape-key"
    key_file.write_text(READ_KEY + "\n", encoding="utf-8")
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(_loopback_config(int(api.rsplit(":", 1)[1]), key_file)), encoding="utf-8")
    port = free_port()
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    prometheus = f"http://127.0.0.1:{port}"
    with running(command, tmp_path / "prometheus.log") as proc:
        _embed(api, 1)
        try:
            target = _eventually(lambda: _target(prometheus), "the xalign target up")
            before = _eventually(lambda: _counter(prometheus, 1), "the first embedding request in Prometheus")
            _embed(api, 5)
            after = _eventually(lambda: _counter(prometheus, before + 5), "five more requests in Prometheus")
        except AssertionError as exc:
            log = _tail(tmp_path / "prometheus.log")
            raise AssertionError(f"{exc}\nprometheus (exit {proc.poll()}):\n{log}") from exc
    print(f"\nprometheus target: health={target['health']} lastError={target['lastError']!r} url={target['scrapeUrl']}")
    print(f"{COUNTER}: before={before:g} after={after:g}")
    assert target["lastError"] == "" and target["labels"]["job"] == "xalign"
    assert after - before >= 5


def _tail(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-3000:] if log.exists() else "(no log)"
