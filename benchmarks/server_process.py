"""``xalign-serve`` in a subprocess for the HTTP benchmarks: its command, a free port, readiness, and stopping it.

The server runs with ``THREADS`` onnxruntime threads (``benchmarks/protocol.py``) on a free loopback port and
a throw-away data folder, in its own process group so that stopping it stops every process it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NamedTuple

import httpx

from benchmarks.protocol import REPO, THREADS


class Server(NamedTuple):
    """A running server: its base URL and the command that started it."""

    url: str
    command: list[str]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(
    store: Path,
    model: str,
    port: int,
    data_dir: Path,
    *,
    checkout: Path | None = None,
    flags: Sequence[str] = (),
    launcher: Sequence[str] = (),
) -> list[str]:
    """``xalign-serve`` of this venv, or ``python -m service.cli`` of ``checkout``, serving ``model`` only.

    ``launcher``: a command that takes ``xalign-serve``'s flags instead (an instrumented server).
    """
    script = Path(sys.executable).with_name("xalign-serve")
    base = [str(script)] if checkout is None and script.exists() else [sys.executable, "-m", "service.cli"]
    base = list(launcher) or base
    serving = ["--store", str(store.resolve()), "--models", f'["{model}"]', "--threads", str(THREADS)]
    listening = ["--host", "127.0.0.1", "--port", str(port), "--poll-interval-s", "0", "--data-dir", str(data_dir)]
    return [*base, *serving, *listening, *flags]


def wait_ready(base_url: str, proc: subprocess.Popen[bytes], timeout: float, path: str = "/ready") -> None:
    """Poll ``path`` until it answers 200; ``RuntimeError`` if the server exits or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        with suppress(httpx.TransportError):
            if httpx.get(f"{base_url}{path}", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"the server was not ready after {timeout} s")


@contextmanager
def serve(
    store: Path,
    model: str,
    log: Path,
    *,
    flags: Sequence[str] = (),
    checkout: Path | None = None,
    timeout: float = 300,
    launcher: Sequence[str] = (),
) -> Iterator[Server]:
    """Run the server (with ``flags``) until the block ends, its output in ``log``; yield its URL and command.

    ``checkout`` runs another checkout's server with this venv (its folder as working folder and
    ``PYTHONPATH``), so that the code before a change is measured with the same client.
    """
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="xalign-bench-"))
    command = serve_command(store, model, port, data_dir, checkout=checkout, flags=flags, launcher=launcher)
    env = dict(os.environ)
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout.resolve())
    cwd = checkout.resolve() if checkout is not None else REPO
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True)
        try:
            wait_ready(f"http://127.0.0.1:{port}", proc, timeout)
            yield Server(f"http://127.0.0.1:{port}", command)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
            shutil.rmtree(data_dir, ignore_errors=True)
