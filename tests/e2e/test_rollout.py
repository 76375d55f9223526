"""A real ``xalign-serve`` process follows a new version published while a client streams requests:
zero failed requests, and the answers switch from version 1 to version 2."""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

import httpx
import onnxruntime as ort
from processes import free_port, running, wait_for, wait_ready
from tiny_models import build_model_dir, publish_tiny

PROBE = ["hello world", "the cat sat on the mat"]


class Streamer(threading.Thread):
    """Posts embedding requests back to back until stopped (bounded), recording (status, model)."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.answers: list[tuple[int, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            for _ in range(100_000):
                if self.stop.is_set():
                    return
                try:
                    response = client.post("/v1/embeddings", json={"input": PROBE})
                except httpx.TransportError as exc:  # a dropped connection is a failed request too
                    self.answers.append((0, type(exc).__name__))
                    continue
                self.answers.append((response.status_code, response.json().get("model", response.text)))

    def models(self) -> list[str]:
        """The model of every answer so far."""
        return [model for _, model in list(self.answers)]


def test_new_version_rolls_out_under_load(tiny_store: Path, tmp_path: Path) -> None:
    store, port = tmp_path / "store", free_port()
    shutil.copytree(tiny_store, store)
    v2_dir = build_model_dir(tmp_path / "tiny-v2", seed=1)
    base_url = f"http://127.0.0.1:{port}"
    serve = str(Path(sys.executable).with_name("xalign-serve"))
    command = [serve, "--store", str(store), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--threads", "1", "--poll-interval-s", "0.5"]
    log = tmp_path / "serve.log"
    with running(command, log) as proc:
        wait_ready(base_url, proc, log, timeout=120)
        streamer = Streamer(base_url)
        streamer.start()
        try:
            wait_for(lambda: len(streamer.answers) >= 10, 60, "answers from version 1")
            publish_tiny(v2_dir, store)  # export + atomic publish while requests stream in
            wait_for(lambda: "tiny:2" in streamer.models(), 60, "the swap to tiny:2")
            swapped_at = len(streamer.answers)
            wait_for(lambda: len(streamer.answers) >= swapped_at + 20, 60, "answers from version 2")
        finally:
            streamer.stop.set()
            streamer.join(timeout=60)
        cards = httpx.get(f"{base_url}/v1/models", timeout=10).json()
    assert [a for a in streamer.answers if a[0] != 200] == []
    models = streamer.models()
    switch = models.index("tiny:2")
    assert switch >= 10
    assert set(models[:switch]) == {"tiny:1"}
    assert set(models[switch:]) == {"tiny:2"}
    provider = "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"
    assert [(c["id"], c["provider"]) for c in cards["data"]] == [("tiny:2", provider)]
    assert cards["errors"] == {}
    assert "Traceback" not in log.read_text()
