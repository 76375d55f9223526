"""A local Ray cluster for tests and benchmarks: one-CPU nodes on 127.0.0.1, started with the ``ray`` command.

Used by ``tests/e2e/test_mining_ray.py`` and ``benchmarks/mining_ray.py``. The nodes share one short temp
folder of their own; at the end only the processes whose command line names that folder, and their
descendants (the workers), are killed: ``ray stop`` would kill every Ray process of the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

RAY = Path(sys.executable).parent / "ray"
START_S = 90
NODE = ["--num-cpus", "1", "--object-store-memory", "100000000", "--disable-usage-stats"]


@dataclass(frozen=True)
class LocalCluster:
    """A running cluster: its address (``127.0.0.1:PORT``) and its temp folder."""

    address: str
    temp: Path


@contextlib.contextmanager
def local_cluster(nodes: int = 2) -> Iterator[LocalCluster]:
    """A head node and ``nodes - 1`` more, one CPU each, each start bounded by ``START_S`` seconds."""
    port = _free_port()
    # Ray's socket paths must stay short (AF_UNIX): a folder straight under /tmp.
    temp = Path(tempfile.mkdtemp(prefix="xr", dir="/tmp"))
    head = ["--head", "--port", str(port), "--include-dashboard=false"]
    try:
        for options in [head] + [["--address", f"127.0.0.1:{port}"]] * (nodes - 1):
            command = [str(RAY), "start", *options, "--temp-dir", str(temp), *NODE]
            subprocess.run(command, check=True, timeout=START_S, capture_output=True)
        yield LocalCluster(f"127.0.0.1:{port}", temp)
    finally:
        kill(cluster_pids(temp))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def processes() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, command line) of every process this user can read."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            found[int(entry.name)] = (parent, args)
    return found


def cluster_pids(temp: Path) -> list[int]:
    """The processes of the cluster whose temp folder is ``temp``, and all their descendants."""
    table = processes()
    pids = {pid for pid, (_, args) in table.items() if str(temp) in args}
    grown = True
    while grown:
        children = {pid for pid, (parent, _) in table.items() if parent in pids} - pids
        pids |= children
        grown = bool(children)
    return sorted(pids)


def node_workers(cluster: LocalCluster, node: int, title: str) -> list[int]:
    """Worker processes of node ``node`` (0 is the head) whose process title starts with ``title``."""
    socket_name = "sockets/raylet " if node == 0 else f"sockets/raylet.{node} "
    table = processes()
    raylets = {pid for pid, (_, args) in table.items() if str(cluster.temp) in args and socket_name in args}
    return sorted(pid for pid, (parent, args) in table.items() if parent in raylets and args.startswith(title))


def kill(pids: list[int]) -> None:
    """SIGKILL each process (gone already is fine)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
