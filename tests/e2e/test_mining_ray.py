"""``xalign-mine --ray`` on a real local Ray cluster: a head and a second node, one CPU each, on 127.0.0.1.

The TSV must be byte-identical to the in-process run's (which must not import Ray), and a worker process
killed mid-job must not fail the job nor change its output. Without ray (the extra ``distributed``) the
tests are skipped, except with ``CI=true`` where they fail. The cluster comes from
``benchmarks/ray_cluster.py``, which kills only its own processes at the end.
"""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from data_paths import REPO

from benchmarks.ray_cluster import RAY, LocalCluster, local_cluster, node_workers
from xalign.runtime.mining.cli import main

DATA = REPO / "tests" / "data" / "mining"
JOB_S = 120


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A head node and a second node; their processes (only theirs) are killed after."""
    if importlib.util.find_spec("ray") is None or not RAY.is_file():
        reason = "ray is not installed (pip install '.[distributed]')"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with local_cluster(nodes=2) as running:
        yield running


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


def _mine_on_ray(args: list[str], cluster: LocalCluster) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "xalign.runtime.mining.cli", *args, "--ray", cluster.address]
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
    cluster: LocalCluster, tiny_store: Path, tmp_path: Path
) -> None:
    src, tgt = [DATA / "src.txt", DATA / "src_more.txt"], [DATA / "tgt"]
    local = _args(tiny_store, src, tgt, tmp_path / "local", tmp_path / "local.tsv", "--shard-size", "4")
    assert main([*local, "--no-progress"]) == 0
    assert "ray" not in sys.modules
    on_ray = _args(tiny_store, src, tgt, tmp_path / "ray", tmp_path / "ray.tsv", "--shard-size", "4")
    log = _finish(_mine_on_ray([*on_ray, "--no-progress"], cluster))
    assert "ray: 2 embedding actors (one per CPU)" in log
    assert (tmp_path / "ray.tsv").read_bytes() == (tmp_path / "local.tsv").read_bytes()
    assert (tmp_path / "local.tsv").stat().st_size > 0


def test_a_killed_worker_does_not_fail_the_job(cluster: LocalCluster, tiny_store: Path, tmp_path: Path) -> None:
    src, tgt = _corpus(tmp_path, 1200)
    # One text per encoder batch keeps the embedding stage long enough (seconds) to kill a worker in it.
    settings = ["--shard-size", "60", "--batch-size", "1", "--no-progress"]
    assert main(_args(tiny_store, [src], [tgt], tmp_path / "local", tmp_path / "local.tsv", *settings)) == 0
    job = _mine_on_ray(_args(tiny_store, [src], [tgt], tmp_path / "ray", tmp_path / "ray.tsv", *settings), cluster)
    shards = tmp_path / "ray" / "embeddings" / "src"
    deadline, victim = time.monotonic() + JOB_S, None
    while victim is None and time.monotonic() < deadline and job.poll() is None:
        if any(shards.glob("shard-*.npy")):
            victim = next(iter(node_workers(cluster, 1, "ray::EmbedWorker")), None)
        time.sleep(0.05)
    assert victim is not None, "no embedding actor on the second node while the job ran"
    done_before = len(list(shards.glob("shard-*.npy")))
    os.kill(victim, signal.SIGKILL)
    log = _finish(job)
    assert done_before < 20, "the job had embedded every src shard before the kill"
    assert (tmp_path / "ray.tsv").read_bytes() == (tmp_path / "local.tsv").read_bytes(), log
