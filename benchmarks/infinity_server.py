"""infinity-emb 0.0.78 (``benchmarks/infinity_setup.sh`` makes its venv) serving an xalign store version.

    with serve_infinity(version_dir, cache_dir, log, venv=Path("/var/tmp/xalign-infinity")) as server:
        httpx.post(f"{server.url}/v1/embeddings", json={"model": server.model, "input": [...]})

The model folder (``benchmarks/infinity_model.py``) holds the store's graph cut before its pooling, which
infinity does itself in numpy (``--pooling-method mean``: its ``auto`` means CLS pooling for the ONNX
engine). infinity's tokenizer does not add e5's prefix: every text sent to it must start with
``InfinityServer.text_prefix`` (the manifest's ``text_prefix``, e.g. ``"query: "``), which xalign's
tokenizer (``runtime/tokenization.py``) prepends itself. xalign also NFC-normalises texts; infinity does
not, which matters only for texts with decomposed accents.

Flags, and why: ``--onnx-disable-optimize`` (else infinity rewrites the graph with optimum's
``ORTOptimizer`` at level 99 into the hub cache and runs that instead), ``--onnx-do-not-prefer-quantized``
(on CPU it prefers any ``*quantize*.onnx`` in the folder; there is none, but the intent is fp32),
``--no-model-warmup`` unless asked (its warm-up runs ``--batch-size`` texts of 512 tokens twice, tens of
seconds of both cores), ``--no-vector-disk-cache``, ``--pooling-method mean``, ``--url-prefix /v1`` (so
the routes are ``/v1/embeddings`` and ``/v1/models``, as xalign's; ``/health`` has no prefix).
``--batch-size`` (default 32) is infinity's largest forward batch; its dynamic batcher fills it from
concurrent requests.

Threads: infinity has no thread option and optimum opens the ``InferenceSession`` with default options,
so onnxruntime's intra-op pool has one thread per core whatever ``OMP_NUM_THREADS`` says (checked on
this 2-core machine: 2 threads with and without ``OMP_NUM_THREADS=1``, and also under ``taskset -c 0``).
``threads`` below the core count therefore pins the process to the first ``threads`` cores with
``taskset``: the pool keeps its size but can use only those cores. ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``
are set to ``threads`` for the torch that infinity imports. Telemetry is off (``DO_NOT_TRACK=1``,
``INFINITY_ANONYMOUS_USAGE_STATS=0``) and the hub offline; caches go to the throw-away folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from benchmarks.infinity_model import build_model_dir
from benchmarks.server_process import free_port, wait_ready

URL_PREFIX = "/v1"
# Outside the checkout (the venv is ~1.5 GB) and kept across reboots, unlike /tmp.
DEFAULT_VENV = Path("/var/tmp/xalign-infinity")  # noqa: S108


class InfinityServer(NamedTuple):
    """A running infinity server: base URL (routes under ``/v1``), model name, command, the texts' prefix."""

    url: str
    model: str
    command: list[str]
    text_prefix: str


def infinity_command(venv: Path, port: int, model: str, threads: int, *, warmup: bool = False) -> list[str]:
    """``infinity_emb v2`` serving the folder it runs in (``--model-id .``) as ``model`` on CPU."""
    serving = ["--model-id", ".", "--served-model-name", model, "--engine", "optimum", "--device", "cpu"]
    onnx = ["--onnx-disable-optimize", "--onnx-do-not-prefer-quantized", "--pooling-method", "mean"]
    quiet = ["--model-warmup" if warmup else "--no-model-warmup", "--no-vector-disk-cache"]
    listening = ["--host", "127.0.0.1", "--port", str(port), "--url-prefix", URL_PREFIX]
    command = [str(venv / "bin" / "infinity_emb"), "v2", *serving, *onnx, *quiet, *listening]
    cores = os.cpu_count() or threads
    pinning = ["taskset", "-c", f"0-{threads - 1}"] if threads < cores else []
    return [*pinning, *command]


def infinity_env(threads: int, home: Path) -> dict[str, str]:
    """This process's environment with telemetry off, the hub offline, caches in ``home``, ``threads`` threads."""
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env.update(
        DO_NOT_TRACK="1",
        INFINITY_ANONYMOUS_USAGE_STATS="0",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(home / "hf"),
        INFINITY_HOME=str(home),
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
    )
    return env


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group: SIGTERM, then SIGKILL after 30 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@contextmanager
def serve_infinity(
    version_dir: Path,
    cache_dir: Path,
    log: Path,
    *,
    venv: Path = DEFAULT_VENV,
    threads: int = 2,
    timeout: float = 600,
    warmup: bool = False,
) -> Iterator[InfinityServer]:
    """Run infinity on the store version ``version_dir`` until the block ends, its output in ``log``.

    ``cache_dir`` is the converted base model folder (``config.json`` and the tokenizer's configuration).
    ``warmup`` keeps infinity's own start-up warm-up (off by default; see the module docstring).
    """
    home = Path(tempfile.mkdtemp(prefix="xalign-infinity-"))
    folder = home / "model"
    folder.mkdir()
    try:
        manifest = build_model_dir(version_dir, cache_dir, folder)
        port = free_port()
        command = infinity_command(venv, port, manifest["name"], threads, warmup=warmup)
        url = f"http://127.0.0.1:{port}"
        with log.open("wb") as out:
            env = infinity_env(threads, home)
            proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=folder, env=env, start_new_session=True
            )
            try:
                wait_ready(url, proc, timeout, path=f"{URL_PREFIX}/models")  # answers once the engine runs
                yield InfinityServer(url, manifest["name"], command, manifest.get("text_prefix") or "")
            finally:
                stop(proc)
    finally:
        shutil.rmtree(home, ignore_errors=True)
