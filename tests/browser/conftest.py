"""The web page in a real browser: Debian's chromium through chromedriver (Selenium), against a live service.

One store, one server and one browser per module. The store holds the tiny dual encoder twice (version 2 with an
evaluation, ``production`` on it) and the tiny Backpack; the server is uvicorn on a free loopback port with a
read and an admin key. ``make test`` installs chromium and chromium-driver when it runs as root; elsewhere the
tests are skipped when either is missing, except with ``CI=true`` where that fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from serving import real_server
from tiny_backpack import build_backpack_dir, publish_tiny_backpack

from xalign.modelstore import ModelSpec, ModelStore
from xalign.modelstore.refs import parse_ref
from xalign.modelstore.release import Evaluation
from xalign.service.settings import Settings

READ_KEY = "ui-test-read-key"
ADMIN_KEY = "ui-test-admin-key"
# Recorded as the export pipeline records it: Tatoeba accuracy per direction and BUCC F1 (percent).
EVALUATION: Evaluation = {
    "tatoeba": {"deu-eng": 91.5, "eng-deu": 90.25, "mean": 90.88},
    "bucc2018-de-en": {"f1": 88.5, "precision": 90.0, "recall": 87.0, "threshold": 1.06},
}
# Flags that run Debian's chromium headless as root in a container, offline and without side services.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def browser_binaries() -> tuple[str, str]:
    """chromium and chromedriver, or a skip naming what is missing (a failure under ``CI=true``)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing = " and ".join(n for n, p in (("chromium", chromium), ("chromedriver", driver)) if p is None)
        reason = f"no {missing}: install Debian's chromium and chromium-driver (make test does so when run as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return chromium, driver


@pytest.fixture(scope="module")
def binaries() -> tuple[str, str]:
    return browser_binaries()


@pytest.fixture(scope="module")
def read_key() -> str:
    return READ_KEY


@pytest.fixture(scope="module")
def admin_key() -> str:
    return ADMIN_KEY


@pytest.fixture(scope="module")
def evaluation() -> dict[str, dict[str, float]]:
    """What tiny version 2's manifest records."""
    return EVALUATION


def republish(models: ModelStore, evaluation: Evaluation) -> None:
    """Publish tiny version 1's files again as the next version, with ``evaluation`` (no export, no torch)."""
    first = models.load(parse_ref("tiny:1"))
    spec = ModelSpec.model_validate(first.manifest.model_dump(include=set(ModelSpec.model_fields)))
    files = {name: first.path / name for name in first.manifest.files}
    models.publish("tiny", spec.model_copy(update={"evaluation": evaluation}), files)


@pytest.fixture(scope="module")
def ui_store(binaries: tuple[str, str], tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny 1 (no evaluation), tiny 2 (EVALUATION; production), tiny 3 (one point better everywhere: the release
    gate lets it become production) and tiny-backpack 1."""
    store = tmp_path_factory.mktemp("ui") / "store"
    shutil.copytree(tiny_store, store)
    models = ModelStore(store)
    republish(models, EVALUATION)
    republish(models, {task: {m: v + 1 for m, v in metrics.items()} for task, metrics in EVALUATION.items()})
    models.promote("tiny", 2)
    publish_tiny_backpack(build_backpack_dir(tmp_path_factory.mktemp("ui-backpack"), seed=0), store)
    return store


@pytest.fixture(scope="module")
def live(ui_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The page's URL on a live service on a free loopback port; at most 600 tokens a request, so that the
    mining test's larger lists go past it."""
    settings = Settings(
        store=ui_store,
        data_dir=tmp_path_factory.mktemp("ui-data"),
        threads=1,
        api_keys=[READ_KEY],
        admin_api_keys=[ADMIN_KEY],
        max_tokens_per_request=600,
        job_embed_chunk=4,
        poll_interval_s=0,
    )
    with real_server(settings) as (_, port):
        yield f"http://127.0.0.1:{port}/ui/"


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser saves downloads."""
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(
    binaries: tuple[str, str], downloads: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[webdriver.Chrome]:
    """One headless chromium for the module, with a fresh profile and downloads into ``downloads``."""
    chromium, driver = binaries
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    chrome.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield chrome
    finally:
        chrome.quit()
