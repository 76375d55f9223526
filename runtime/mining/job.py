"""The resumable mining job: two corpora in, a TSV of mined pairs out, every step kept on disk.

Stages, each with a progress bar and a log line (``runtime/mining/progress.py``):

1. read each side: checksums and line counts, then one pass that numbers the distinct texts
   (``runtime/mining/corpus.py``); a bad input stops here, before anything is written;
2. embed each side's distinct texts into shards (``runtime/mining/shards.py``);
3. search the k nearest neighbours of every shard of one side in the other, both ways, exactly or with an
   approximate index (``runtime/mining/neighbour_files.py``);
4. margin scoring and retrieval over all neighbours (``runtime/mining/scoring.py``), as ``/v1/bitext/mine``
   does for small inputs, and the sorted TSV (``runtime/mining/pairs_tsv.py``).

Steps 2 and 3 go through an :class:`~xalign.runtime.mining.executor.Executor`, one task per shard. Every
file is written atomically, so a job killed at any point and started again reuses each finished shard and
neighbour file and writes the same output, byte for byte. A lock file keeps two jobs out of one work folder.

A host that runs jobs itself (the service's job API, ``service/jobs/worker.py``) passes :class:`JobHooks`:
a cancellation check between tasks, a progress callback per stage, an embedding function of its own (the
service embeds through its shared batcher) and a receiver of the mined pairs. Without hooks the job
behaves as ``xalign-mine`` needs.
"""

from __future__ import annotations

import fcntl
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from xalign.runtime.margin import MiningConfig
from xalign.runtime.mining.atomic_files import remove_stale_temps, replacing
from xalign.runtime.mining.corpus import Side, TextFormat, describe_file, side_files, unify
from xalign.runtime.mining.executor import Executor, LocalExecutor
from xalign.runtime.mining.neighbour_files import (
    INDEX,
    KNN,
    IndexSearch,
    SearchSettings,
    SearchTask,
    build_side_index,
    exact_search,
    index_path,
    load_neighbours,
    open_neighbours,
    pending_searches,
    search_tasks,
)
from xalign.runtime.mining.pairs_tsv import with_single_ids, write_pairs
from xalign.runtime.mining.progress import LOG, Stage, stage
from xalign.runtime.mining.scoring import PairArrays, score_neighbours
from xalign.runtime.mining.shards import (
    EMBEDDINGS,
    EmbedTask,
    ModelChoice,
    ReuseError,
    ShardEmbedder,
    ShardFiles,
    choose_model,
    embedding_tasks,
    open_shards,
    shard_files,
    shards_identity,
)

LOCK = ".lock"

# (texts,) -> (texts, dim) float32 unit rows.
EmbedFunction = Callable[[list[str]], npt.NDArray[np.float32]]


class JobCancelled(Exception):  # noqa: N818 - a stop asked for, not an error of the job
    """The host's cancellation check said stop; raised at a task boundary, finished files stay."""


@dataclass(frozen=True)
class JobHooks:
    """What a host may plug into a job; every hook is optional and called on the job's thread.

    ``cancelled()`` is asked before every task (and by the host's own ``embed`` as it likes); ``progress``
    gets ``(stage, done, total)`` as units are done (work reused from an earlier run counts as done);
    ``embed`` replaces loading the encoder in the job; ``pairs`` receives the mined pairs (rows of the
    distinct texts of each side) and both sides before the TSV is written.
    """

    cancelled: Callable[[], bool] = lambda: False
    progress: Callable[[str, int, int], None] = lambda *_: None
    embed: EmbedFunction | None = None
    pairs: Callable[[PairArrays, Side, Side], None] | None = None

    def check(self) -> None:
        """Raise :class:`JobCancelled` if the host asked to stop."""
        if self.cancelled():
            raise JobCancelled("the job was cancelled")


@dataclass(frozen=True)
class JobSpec:
    """Everything one mining job needs: model, inputs, work folder, output and settings."""

    store: Path
    model: str
    src: tuple[Path, ...]
    tgt: tuple[Path, ...]
    work: Path
    out: Path
    variant: str = "fp32"
    config: MiningConfig = field(default_factory=MiningConfig)
    fmt: TextFormat = "plain"
    shard_size: int = 10_000
    search: SearchSettings = field(default_factory=SearchSettings)
    batch_size: int = 32
    restart: bool = False
    progress: bool = True


@dataclass(frozen=True)
class JobReport:
    """What a finished job did: sentences and distinct texts per side, pairs written, wall time."""

    src_sentences: int
    src_unique: int
    tgt_sentences: int
    tgt_unique: int
    pairs: int
    seconds: float


def run_job(spec: JobSpec, executor: Executor | None = None, hooks: JobHooks | None = None) -> JobReport:
    """Run (or resume) a mining job; see the module docstring for the stages.

    Raises ``CorpusError`` for a bad input, the model store's errors or ``UnknownVariantError`` for a bad
    model, and ``ReuseError`` when the work folder holds results of another model or input (or another job
    holds it); in all these cases before writing anything. ``JobCancelled`` when ``hooks`` say stop.
    """
    started = time.perf_counter()
    hooks = hooks or JobHooks()
    model = choose_model(spec.store, spec.model, spec.variant)
    src, tgt = read_side("src", spec, hooks), read_side("tgt", spec, hooks)
    with work_folder(spec.work, restart=spec.restart):
        pairs = _mine(spec, model, src, tgt, _Checked(executor or LocalExecutor(), hooks), hooks=hooks)
        if hooks.pairs is not None:
            hooks.pairs(pairs, src, tgt)
        with _stage(spec, hooks, "write", len(pairs), "pairs") as bar:
            write_pairs(spec.out, pairs, src, tgt)
            bar.advance(len(pairs))
    seconds = time.perf_counter() - started
    LOG.info("mined %s pairs in %.1f s into %s", f"{len(pairs):,}", seconds, spec.out)
    return JobReport(src.sentences, src.unique, tgt.sentences, tgt.unique, len(pairs), seconds)


def read_side(name: str, spec: JobSpec, hooks: JobHooks | None = None) -> Side:
    """Checksum, count and unify one side's files (stages ``checksum`` and ``read``)."""
    hooks = hooks or JobHooks()
    paths = side_files(spec.src if name == "src" else spec.tgt, name)
    size = sum(path.stat().st_size for path in paths)
    with _stage(spec, hooks, f"checksum {name}", size, "bytes") as bar:
        files = [describe_file(path, bar.advance) for path in paths]
    hooks.check()
    with _stage(spec, hooks, f"read {name}", sum(f.lines for f in files), "lines") as bar:
        side = unify(name, files, spec.fmt, bar.advance)
    LOG.info("%s: %s sentences, %s distinct", name, f"{side.sentences:,}", f"{side.unique:,}")
    return side


@contextmanager
def work_folder(work: Path, *, restart: bool) -> Iterator[None]:
    """Hold the work folder's lock for the block (``ReuseError`` if another job holds it); tidy it first."""
    work.mkdir(parents=True, exist_ok=True)
    with (work / LOCK).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ReuseError(f"another xalign-mine job is using {work}") from exc
        if restart:
            for stage_folder in (EMBEDDINGS, KNN, INDEX):
                shutil.rmtree(work / stage_folder, ignore_errors=True)
        remove_stale_temps(work)
        yield


class _Reporting:
    """A stage's bar that also tells the host's progress hook."""

    def __init__(self, bar: Stage, hooks: JobHooks, total: int) -> None:
        self.bar, self.hooks, self.total = bar, hooks, total
        self.done = bar.reused
        hooks.progress(bar.label, self.done, total)

    def advance(self, count: int) -> None:
        """Count ``count`` more units done, on the bar and to the hook."""
        self.bar.advance(count)
        self.done += count
        self.hooks.progress(self.bar.label, self.done, self.total)


@contextmanager
def _stage(
    spec: JobSpec, hooks: JobHooks, label: str, total: int, unit: str, *, reused: int = 0
) -> Iterator[_Reporting]:
    """A progress stage (``runtime/mining/progress.py``) whose advances reach the hook too."""
    with stage(label, total, unit, shown=spec.progress, reused=reused) as bar:
        yield _Reporting(bar, hooks, total)


class _Checked:
    """An executor whose map asks the cancellation hook before handing out each task."""

    def __init__(self, executor: Executor, hooks: JobHooks) -> None:
        self.executor, self.hooks = executor, hooks

    def map(self, function: Callable[[Any], Any], tasks: Iterable[Any], label: str) -> Iterator[Any]:
        """The wrapped executor's map over ``tasks``, stopping with ``JobCancelled`` between tasks."""
        return self.executor.map(function, self._checked(tasks), label)

    def _checked(self, tasks: Iterable[Any]) -> Iterator[Any]:
        for task in tasks:
            self.hooks.check()
            yield task


@dataclass(frozen=True)
class _FunctionEmbedder:
    """Embeds a shard with the host's function and writes it atomically (as ``ShardEmbedder`` does)."""

    embed: EmbedFunction

    def __call__(self, task: EmbedTask) -> int:
        vectors = self.embed(task.texts)  # (rows, dim), unit rows
        with replacing(task.path) as tmp, tmp.open("wb") as handle:
            np.save(handle, vectors)
        return len(task.texts)


def _mine(
    spec: JobSpec, model: ModelChoice, src: Side, tgt: Side, executor: Executor, *, hooks: JobHooks
) -> PairArrays:
    identity, labels = shards_identity(model, (src, tgt), spec.shard_size)
    src_files = shard_files(spec.work, src, spec.shard_size, model.dim)
    tgt_files = shard_files(spec.work, tgt, spec.shard_size, model.dim)
    manifest = open_shards(spec.work / EMBEDDINGS, identity, labels, [src_files, tgt_files])
    embedder: Callable[[EmbedTask], int] = (
        ShardEmbedder(model.store, model.ref, model.variant, spec.batch_size)
        if hooks.embed is None
        else _FunctionEmbedder(hooks.embed)
    )
    for side, files in ((src, src_files), (tgt, tgt_files)):
        _embed(spec, side, files, embedder, executor, hooks=hooks)
    open_neighbours(spec.work, spec.search, spec.config.k, manifest)
    _search(spec, "fwd", src_files, tgt_files, executor, hooks=hooks)
    _search(spec, "bwd", tgt_files, src_files, executor, hooks=hooks)
    hooks.check()
    with _stage(spec, hooks, "margin", src.unique + tgt.unique, "queries") as bar:
        x2y = load_neighbours(spec.work, "fwd", src_files.count)  # (src distinct, k)
        y2x = load_neighbours(spec.work, "bwd", tgt_files.count)  # (tgt distinct, k)
        config = spec.config
        pairs = score_neighbours(x2y, y2x, config.margin, config.retrieval, config.threshold)
        bar.advance(src.unique + tgt.unique)
    return with_single_ids(pairs, src, tgt)


def _embed(
    spec: JobSpec,
    side: Side,
    files: ShardFiles,
    embedder: Callable[[EmbedTask], int],
    executor: Executor,
    *,
    hooks: JobHooks,
) -> None:
    todo = files.missing()
    reused = files.rows - _rows_of(files, todo)
    label = f"embed {side.name}"
    with _stage(spec, hooks, label, files.rows, "sentences", reused=reused) as bar:
        for rows in executor.map(embedder, embedding_tasks(side, files, todo), label):
            bar.advance(rows)


def _search(
    spec: JobSpec, direction: str, queries: ShardFiles, base: ShardFiles, executor: Executor, *, hooks: JobHooks
) -> None:
    settings, k = spec.search, spec.config.k
    function: Callable[[SearchTask], int]
    if settings.kind == "exact":
        function = exact_search(base, k, settings)
    else:
        path = index_path(spec.work, base.folder.name, settings.kind)
        if not path.is_file():
            with _stage(spec, hooks, f"index {base.folder.name}", base.rows, "vectors") as bar:
                build_side_index(base, path, settings)
                bar.advance(base.rows)
        function = IndexSearch(path, k, settings, base if settings.kind == "ivfpq" else None)
    todo = pending_searches(spec.work, direction, queries)
    tasks = search_tasks(spec.work, direction, queries, todo)
    label, reused = f"knn {direction}", queries.rows - _rows_of(queries, todo)
    with _stage(spec, hooks, label, queries.rows, "queries", reused=reused) as bar:
        for rows in executor.map(function, tasks, label):
            bar.advance(rows)


def _rows_of(files: ShardFiles, shards: list[int]) -> int:
    offsets = files.offsets
    return sum(int(offsets[i + 1] - offsets[i]) for i in shards)
