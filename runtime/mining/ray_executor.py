"""The mining job's tasks on a Ray cluster (``xalign-mine --ray auto|ADDRESS``), the same files as in-process.

:class:`RayExecutor` implements :class:`~xalign.runtime.mining.executor.Executor` three ways:

- embedding shards (a :class:`~xalign.runtime.mining.shards.ShardEmbedder`) go to a pool of actors, one per
  GPU of the cluster or else one per CPU; each loads the ONNX model once (``OnnxEncoder.from_store``, one
  onnxruntime thread on CPU, so the actors of a machine do not fight over its cores) and writes each shard
  with the embedder's own atomic file code;
- exact k-NN (an :class:`~xalign.runtime.mining.neighbour_files.ExactSearch`) runs one Ray task per pair of
  query shard and base shard; the driver merges each query shard's parts in base order, as the local search
  does, so ties fall the same way, and writes the neighbour file with ``save_neighbours``;
- any other task function (an approximate index search) runs as one Ray task per task.

The margin is then scored on the driver by the job (``runtime/mining/job.py``), as in-process. Actors are
restarted and their calls retried, and tasks retried, when a worker process dies, so a killed worker
does not fail the job; a task that raises fails it.

Workers read and write the files of the work folder by their paths: every node must see the driver's WORK
(and the model store) at the same path. A local cluster (several nodes on one machine) does; a cluster of
several machines needs WORK and the store on a shared file system, and xalign installed on every node.

``ray`` is imported by :func:`connect` only, when ``--ray`` is given; nothing else in xalign imports it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from xalign.runtime.mining.neighbour_files import ExactSearch, SearchTask, save_neighbours
from xalign.runtime.mining.neighbours import Neighbours, knn_chunked, merge_neighbours
from xalign.runtime.mining.progress import LOG
from xalign.runtime.mining.shards import EmbedTask, ShardEmbedder
from xalign.runtime.onnx_encoder import OnnxEncoder

Task = TypeVar("Task")
Result = TypeVar("Result")
# Restarts of an actor and retries of a call or task after its worker process died (not after an exception).
RETRIES = 4


def connect(address: str) -> RayExecutor:
    """Join the Ray cluster at ``address`` (``ray://host:port`` or ``host:port``), or with ``auto`` the one
    running on this machine, starting a local one when none runs. Logs which."""
    import ray  # noqa: PLC0415  # only with --ray: the distributed extra is optional

    if address != "auto":
        ray.init(address=address)
        LOG.info("ray: joined the cluster at %s", address)
    else:
        try:
            ray.init(address="auto")
            LOG.info("ray: joined the cluster running on this machine")
        except ConnectionError:
            ray.init()
            LOG.info("ray: no cluster running, started a local one")
    return RayExecutor(ray)


class EmbedWorker:
    """An actor's state: the embedder with its encoder loaded once, at ``threads`` onnxruntime threads."""

    def __init__(self, embedder: ShardEmbedder, threads: int | None) -> None:
        self.embedder = embedder
        self.embedder._encoder = OnnxEncoder.from_store(embedder.store, embedder.ref, embedder.variant, threads)

    def embed(self, task: EmbedTask) -> int:
        """Embed one shard into its file; return how many texts it held."""
        return self.embedder(task)


def pair_knn(query: Path, base: Path, offset: int, k: int, chunk_rows: int) -> Neighbours:
    """Exact k-NN of query shard ``query`` in one base shard, ids counted in the whole base side: (n, k)."""
    part = knn_chunked(np.load(query, mmap_mode="r"), np.load(base, mmap_mode="r"), k, chunk_rows)
    return Neighbours(part.sims, part.ids + offset)


def apply(function: Callable[[Task], Result], task: Task) -> Result:
    """Run one task (a Ray task's body for any task function)."""
    return function(task)


class RayExecutor:
    """Runs the mining job's tasks on the Ray cluster :func:`connect` joined; close it (or use ``with``)."""

    def __init__(self, ray: Any) -> None:
        self.ray = ray
        self._pool: list[Any] = []
        self._pool_of: ShardEmbedder | None = None

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the actors and leave the cluster (a local cluster started by :func:`connect` stops)."""
        self._release_pool()
        self.ray.shutdown()

    def map(self, function: Callable[[Task], Result], tasks: Iterable[Task], label: str) -> Iterator[Result]:
        """Apply ``function`` to every task on the cluster; yield the results as they finish."""
        LOG.debug("ray: %s", label)
        return self._dispatch(function, tasks)

    def _dispatch(self, function: Any, tasks: Iterable[Any]) -> Iterator[Any]:
        if isinstance(function, ShardEmbedder):
            return self._embed(function, tasks)
        self._release_pool()  # the actors hold every CPU: free them for the tasks
        if isinstance(function, ExactSearch):
            return self._exact(function, list(tasks))
        return self._tasks(function, tasks)

    def _embed(self, embedder: ShardEmbedder, tasks: Iterable[EmbedTask]) -> Iterator[int]:
        """One shard per idle actor; the next shard's texts are read only when an actor is free."""
        idle = list(self._actors(embedder))
        running: dict[Any, Any] = {}
        for task in tasks:
            if not idle:
                yield self._finish_one(running, idle)
            actor = idle.pop()
            running[actor.embed.remote(task)] = actor
        while running:
            yield self._finish_one(running, idle)

    def _finish_one(self, running: dict[Any, Any], idle: list[Any]) -> Any:
        [done], _ = self.ray.wait(list(running), num_returns=1)
        idle.append(running.pop(done))
        return self.ray.get(done)

    def _actors(self, embedder: ShardEmbedder) -> list[Any]:
        """The actor pool for ``embedder``: kept while the job embeds both sides with the same model."""
        if self._pool and self._pool_of == embedder:
            return self._pool
        self._release_pool()
        gpus = int(self.ray.cluster_resources().get("GPU", 0))
        count = gpus or int(self.ray.cluster_resources().get("CPU", 1))
        options: dict[str, Any] = {"num_gpus": 1, "num_cpus": 0} if gpus else {"num_cpus": 1}
        actor = self.ray.remote(max_restarts=RETRIES, max_task_retries=RETRIES, **options)(EmbedWorker)
        self._pool = [actor.remote(embedder, None if gpus else 1) for _ in range(max(count, 1))]
        self._pool_of = embedder
        LOG.info("ray: %d embedding actors (one per %s)", len(self._pool), "GPU" if gpus else "CPU")
        return self._pool

    def _release_pool(self) -> None:
        for actor in self._pool:
            self.ray.kill(actor)
        self._pool, self._pool_of = [], None

    def _exact(self, search: ExactSearch, tasks: list[SearchTask]) -> Iterator[int]:
        """A task per (query shard, base shard); each query shard's file once all its parts are in."""
        remote = self.ray.remote(max_retries=RETRIES, num_cpus=1)(pair_knn)
        pending: dict[Any, tuple[int, int]] = {}
        for i, task in enumerate(tasks):
            for j, (base, offset) in enumerate(zip(search.base, search.offsets, strict=True)):
                pending[remote.remote(task.query, base, offset, search.k, search.chunk_rows)] = (i, j)
        parts: dict[int, dict[int, Neighbours]] = {}
        while pending:
            [done], _ = self.ray.wait(list(pending), num_returns=1)
            i, j = pending.pop(done)
            parts.setdefault(i, {})[j] = self.ray.get(done)
            if len(parts[i]) == len(search.base):
                yield _save_merged(tasks[i].out, parts.pop(i), search.k)

    def _tasks(self, function: Callable[[Task], Result], tasks: Iterable[Task]) -> Iterator[Result]:
        remote = self.ray.remote(max_retries=RETRIES)(apply)
        shared = self.ray.put(function)  # sent to the object store once, not with every task
        refs = [remote.remote(shared, task) for task in tasks]
        while refs:
            [done], refs = self.ray.wait(refs, num_returns=1)
            yield self.ray.get(done)


def _save_merged(out: Path, parts: dict[int, Neighbours], k: int) -> int:
    """Merge the parts in base shard order (as ``ExactSearch`` does), write them; return the query count."""
    ordered = [parts[j] for j in sorted(parts)]
    best = functools.reduce(lambda a, b: merge_neighbours(a, b, k), ordered)
    save_neighbours(out, best)
    return int(best.sims.shape[0])
