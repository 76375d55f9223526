"""``xalign-mine --ray`` on a real local Ray cluster: a head and a second node, one CPU each, on 127.0.0.1.

The TSV must be byte-identical to the in-process run's (which must not import Ray), and a worker process
killed mid-job must not fail the job nor change its output. Without ray (the extra ``distributed``) the
tests are skipped, except with ``CI=true`` where they fail. The cluster's processes are found by its own
temp folder (and their children), and only those are killed at the end: ``ray stop`` would kill every Ray
process of the machine.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from data_paths import REPO

from xalign.runtime.mining.cli import main

DATA = REPO / "tests" / "data" / "mining"
RAY = Path(sys.executable).parent / "ray"
START_S = 90
JOB_S = 120
NODE = ["--num-cpus", "1", "--object-store-memory", "100000000", "--disable-usage-stats"]


def _need_ray() -> None:
    if importlib.util.find_spec("ray") is None or not RAY.is_file():
        reason = "ray is not installed (pip install '.[distributed]')"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _processes() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, command line) of every process we can read."""
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


def _cluster_pids(temp: Path) -> list[int]:
    """The processes of the cluster whose temp folder is ``temp``, and all their descendants."""
    table = _processes()
    pids = {pid for pid, (_, args) in table.items() if str(temp) in args}
    grown = True
    while grown:
        children = {pid for pid, (parent, _) in table.items() if parent in pids} - pids
        pids |= children
        grown = bool(children)
    return sorted(pids)


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, Path]]:
    """``(address, temp folder)`` of a head node and a second node; their processes are killed after."""
    _need_ray()
    port = _free_port()
    # Ray's socket paths must stay short (AF_UNIX): a short folder straight under /tmp.
    temp = Path(tempfile.mkdtemp(prefix="xr", dir="/tmp"))
    head = ["--head", "--port", str(port), "--include-dashboard=false", "--temp-dir", str(temp)]
    try:
        subprocess.run([str(RAY), "start", *head, *NODE], check=True, timeout=START_S, capture_output=True)
        second = ["--address", f"127.0.0.1:{port}", "--temp-dir", str(temp)]
        subprocess.run([str(RAY), "start", *second, *NODE], check=True, timeout=START_S, capture_output=True)
        yield f"127.0.0.1:{port}", temp
    finally:
        _kill(_cluster_pids(temp))


def _corpus(folder: Path, lines: int) -> tuple[Path, Path]:
    """Two sides of ``lines`` made-up sentences from one small vocabulary (the same seed every time)."""
    rng = random.Random(0)
    words = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 8))) for _ in range(300)]
    sides = []
    for name in ("src", "tgt"):
        path = folder / f"{name}.txt"
        path.write_text("".join(" ".join(rng.choices(words, k=8)) + "\n" for _ in range(lines)), encoding="utf-8")
        sides.append(path)
    return sides[0], sides[1]


def _args(store: Path, src: list[Path], tgt: list[Path], work: Path, out: Path, *extra: str) -> list[str]:
    sides = ["--src", *map(str, src), "--tgt", *map(str, tgt)]
    return ["--store", str(store), "--model", "tiny", *sides, "--work", str(work), "--out", str(out), *extra]


def _mine_on_ray(args: list[str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "xalign.runtime.mining.cli", *args]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(job: subprocess.Popen[bytes]) -> str:
    try:
        output, _ = job.communicate(timeout=JOB_S)
    except subprocess.TimeoutExpired:
        job.kill()
        raise
    log = output.decode(errors="replace")
    assert job.returncode == 0, log
    return log


def test_ray_run_writes_the_same_bytes_and_the_local_run_imports_no_ray(
    cluster: tuple[str, Path], tiny_store: Path, tmp_path: Path
) -> None:
    src, tgt = [DATA / "src.txt", DATA / "src_more.txt"], [DATA / "tgt"]
    local = _args(tiny_store, src, tgt, tmp_path / "local", tmp_path / "local.tsv", "--shard-size", "4")
    assert main([*local, "--no-progress"]) == 0
    assert "ray" not in sys.modules
    on_ray = _args(tiny_store, src, tgt, tmp_path / "ray", tmp_path / "ray.tsv", "--shard-size", "4")
    log = _finish(_mine_on_ray([*on_ray, "--no-progress", "--ray", cluster[0]]))
    assert "ray: 2 embedding actors (one per CPU)" in log
    assert (tmp_path / "ray.tsv").read_bytes() == (tmp_path / "local.tsv").read_bytes()
    assert (tmp_path / "local.tsv").stat().st_size > 0


def _second_node_actor(temp: Path) -> int | None:
    """An embedding actor's process under the second node's raylet (its socket is ``raylet.1``)."""
    table = _processes()
    raylets = [pid for pid, (_, args) in table.items() if str(temp) in args and "sockets/raylet.1 " in args]
    for pid, (parent, args) in table.items():
        if parent in raylets and args.startswith("ray::EmbedWorker"):
            return pid
    return None


def test_a_killed_worker_does_not_fail_the_job(cluster: tuple[str, Path], tiny_store: Path, tmp_path: Path) -> None:
    src, tgt = _corpus(tmp_path, 1200)
    # One text per encoder batch keeps the embedding stage long enough (seconds) to kill a worker in it.
    settings = ["--shard-size", "60", "--batch-size", "1", "--no-progress"]
    assert main(_args(tiny_store, [src], [tgt], tmp_path / "local", tmp_path / "local.tsv", *settings)) == 0
    on_ray = _args(tiny_store, [src], [tgt], tmp_path / "ray", tmp_path / "ray.tsv", *settings, "--ray", cluster[0])
    job = _mine_on_ray(on_ray)
    shards = tmp_path / "ray" / "embeddings" / "src"
    deadline, victim = time.monotonic() + JOB_S, None
    while victim is None and time.monotonic() < deadline and job.poll() is None:
        if any(shards.glob("shard-*.npy")):
            victim = _second_node_actor(cluster[1])
        time.sleep(0.05)
    assert victim is not None, "no embedding actor on the second node while the job ran"
    done_before = len(list(shards.glob("shard-*.npy")))
    os.kill(victim, signal.SIGKILL)
    log = _finish(job)
    assert done_before < 20, "the job had embedded every src shard before the kill"
    assert (tmp_path / "ray.tsv").read_bytes() == (tmp_path / "local.tsv").read_bytes(), log
