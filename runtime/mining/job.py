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
"""

from __future__ import annotations

import fcntl
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from xalign.runtime.margin import MiningConfig
from xalign.runtime.mining.atomic_files import remove_stale_temps
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
from xalign.runtime.mining.progress import LOG, stage
from xalign.runtime.mining.scoring import PairArrays, score_neighbours
from xalign.runtime.mining.shards import (
    EMBEDDINGS,
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


def run_job(spec: JobSpec, executor: Executor | None = None) -> JobReport:
    """Run (or resume) a mining job; see the module docstring for the stages.

    Raises ``CorpusError`` for a bad input, the model store's errors or ``UnknownVariantError`` for a bad
    model, and ``ReuseError`` when the work folder holds results of another model or input (or another job
    holds it); in all these cases before writing anything.
    """
    started = time.perf_counter()
    model = choose_model(spec.store, spec.model, spec.variant)
    src, tgt = read_side("src", spec), read_side("tgt", spec)
    with work_folder(spec.work, restart=spec.restart):
        pairs = _mine(spec, model, src, tgt, executor or LocalExecutor())
        with stage("write", len(pairs), "pairs", shown=spec.progress) as bar:
            write_pairs(spec.out, pairs, src, tgt)
            bar.advance(len(pairs))
    seconds = time.perf_counter() - started
    LOG.info("mined %s pairs in %.1f s into %s", f"{len(pairs):,}", seconds, spec.out)
    return JobReport(src.sentences, src.unique, tgt.sentences, tgt.unique, len(pairs), seconds)


def read_side(name: str, spec: JobSpec) -> Side:
    """Checksum, count and unify one side's files (stages ``checksum`` and ``read``)."""
    paths = side_files(spec.src if name == "src" else spec.tgt, name)
    size = sum(path.stat().st_size for path in paths)
    with stage(f"checksum {name}", size, "bytes", shown=spec.progress) as bar:
        files = [describe_file(path, bar.advance) for path in paths]
    with stage(f"read {name}", sum(f.lines for f in files), "lines", shown=spec.progress) as bar:
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


def _mine(spec: JobSpec, model: ModelChoice, src: Side, tgt: Side, executor: Executor) -> PairArrays:
    identity, labels = shards_identity(model, (src, tgt), spec.shard_size)
    src_files = shard_files(spec.work, src, spec.shard_size, model.dim)
    tgt_files = shard_files(spec.work, tgt, spec.shard_size, model.dim)
    manifest = open_shards(spec.work / EMBEDDINGS, identity, labels, [src_files, tgt_files])
    embedder = ShardEmbedder(model.store, model.ref, model.variant, spec.batch_size)
    for side, files in ((src, src_files), (tgt, tgt_files)):
        _embed(side, files, embedder, executor, spec.progress)
    open_neighbours(spec.work, spec.search, spec.config.k, manifest)
    _search(spec, "fwd", src_files, tgt_files, executor)
    _search(spec, "bwd", tgt_files, src_files, executor)
    with stage("margin", src.unique + tgt.unique, "queries", shown=spec.progress) as bar:
        x2y = load_neighbours(spec.work, "fwd", src_files.count)  # (src distinct, k)
        y2x = load_neighbours(spec.work, "bwd", tgt_files.count)  # (tgt distinct, k)
        config = spec.config
        pairs = score_neighbours(x2y, y2x, config.margin, config.retrieval, config.threshold)
        bar.advance(src.unique + tgt.unique)
    return with_single_ids(pairs, src, tgt)


def _embed(side: Side, files: ShardFiles, embedder: ShardEmbedder, executor: Executor, shown: bool) -> None:
    todo = files.missing()
    reused = files.rows - _rows_of(files, todo)
    label = f"embed {side.name}"
    with stage(label, files.rows, shown=shown, reused=reused) as bar:
        for rows in executor.map(embedder, embedding_tasks(side, files, todo), label):
            bar.advance(rows)


def _search(spec: JobSpec, direction: str, queries: ShardFiles, base: ShardFiles, executor: Executor) -> None:
    settings, k = spec.search, spec.config.k
    function: Callable[[SearchTask], int]
    if settings.kind == "exact":
        function = exact_search(base, k, settings)
    else:
        path = index_path(spec.work, base.folder.name, settings.kind)
        if not path.is_file():
            with stage(f"index {base.folder.name}", base.rows, "vectors", shown=spec.progress) as bar:
                build_side_index(base, path, settings)
                bar.advance(base.rows)
        function = IndexSearch(path, k, settings, base if settings.kind == "ivfpq" else None)
    todo = pending_searches(spec.work, direction, queries)
    tasks = search_tasks(spec.work, direction, queries, todo)
    label, reused = f"knn {direction}", queries.rows - _rows_of(queries, todo)
    with stage(label, queries.rows, "queries", shown=spec.progress, reused=reused) as bar:
        for rows in executor.map(function, tasks, label):
            bar.advance(rows)


def _rows_of(files: ShardFiles, shards: list[int]) -> int:
    offsets = files.offsets
    return sum(int(offsets[i + 1] - offsets[i]) for i in shards)
