"""One release gate for retraining too (modelstore/release.py), against a running ``xalign-serve``.

The tiny model, measured on the mini Tatoeba and BUCC samples, is production and served. A retraining recipe
that wrecks it (a huge learning rate for a few steps) is published by ``xalign-export retrain`` but not promoted:
the command exits 1 with the table of differences and the api keeps serving version 1. The same job with
``--force`` is promoted (recorded as forced) and the api serves it; ``xalign-store rollback`` (not gated) brings
version 1 back, and ``xalign-store history`` tells the story.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
from processes import REPO, free_port, running, wait_for, wait_ready
from retrain_recipe import write_recipe
from tiny_models import publish_tiny

from xalign.modelstore import ModelStore

TATOEBA = REPO / "tests" / "data" / "tatoeba_mini"
BUCC = REPO / "tests" / "data" / "bucc_mini"
PROBE = {"input": ["hello world", "ein Hund rennt im Park"]}


def _tool(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name(name)), *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)


def _served(base_url: str) -> str:
    response = httpx.post(f"{base_url}/v1/embeddings", json=PROBE, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["model"])


def _stays(base_url: str, model: str, seconds: float) -> None:
    """Every answer for ``seconds`` (many watcher polls) comes from ``model``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert _served(base_url) == model
        time.sleep(0.2)


def test_a_worse_retrain_is_published_not_promoted_until_forced_then_rolled_back(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    publish_tiny(tiny_model_dir, store, tatoeba_dir=TATOEBA, tatoeba_langs=("deu",), bucc_dir=BUCC, variants=("fp32",))
    assert _tool("xalign-store", "--store", str(store), "promote", "tiny", "1").returncode == 0
    recipe = write_recipe(tmp_path, tiny_model_dir, steps=3)
    recipe.write_text(recipe.read_text().replace("lr = 1e-3", "lr = 10.0"), encoding="utf-8")  # wrecks the model
    retrain = ["retrain", str(recipe), "--store", str(store), "--name", "tiny", "--variants", "fp32", "--no-progress"]
    retrain += ["--tatoeba-dir", str(TATOEBA), "--bucc-dir", str(BUCC)]  # Tatoeba languages: production's (deu)

    port = free_port()
    base_url, log = f"http://127.0.0.1:{port}", tmp_path / "serve.log"
    serve = [str(Path(sys.executable).with_name("xalign-serve")), "--store", str(store), "--host", "127.0.0.1"]
    serve += ["--port", str(port), "--threads", "1", "--poll-interval-s", "0.5"]
    with running(serve, log) as proc:
        wait_ready(base_url, proc, log, timeout=120)
        assert _served(base_url) == "tiny:1"

        refused = _tool("xalign-export", *retrain)
        assert refused.returncode == 1, refused.stderr[-3000:]
        assert "tiny:2 is not promoted: the gate against tiny:1 failed" in refused.stderr
        assert "tatoeba" in refused.stdout and "FAIL" in refused.stdout  # the table of differences
        assert ModelStore(store).versions("tiny") == [1, 2]
        assert ModelStore(store).aliases("tiny") == {"production": 1}
        _stays(base_url, "tiny:1", 5.0)  # ten polls of the store: no swap

        forced = _tool("xalign-export", *retrain, "--force", "--actor", "release-test")
        assert forced.returncode == 0, forced.stderr[-3000:]
        assert "tiny:2 is production (forced)" in forced.stdout
        assert ModelStore(store).versions("tiny") == [1, 2]  # the same version, not published again
        wait_for(lambda: _served(base_url) == "tiny:2", 60, "the swap to the forced tiny:2")

        rollback = _tool("xalign-store", "--store", str(store), "rollback", "tiny")
        assert rollback.returncode == 0 and "tiny@production -> 1" in rollback.stdout
        wait_for(lambda: _served(base_url) == "tiny:1", 60, "the rollback to tiny:1")
    history = _tool("xalign-store", "--store", str(store), "history", "tiny").stdout.splitlines()
    assert [line.split()[2] for line in history[:3]] == ["initial", "force", "rollback"]
    assert "release-test" in history[1] and "failed (forced)" in history[1] and "not gated" in history[2]
    assert "Traceback" not in log.read_text()
