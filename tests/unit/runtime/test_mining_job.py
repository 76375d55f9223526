"""The resumable mining job (runtime/mining/job.py) and xalign-mine on the tiny store model.

End to end it must give the pairs of ``runtime/margin.py``'s ``mine()`` over the same distinct texts; a run
stopped after some tasks and started again must reuse what was finished and write the same bytes.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from data_paths import REPO

from xalign.runtime.margin import MiningConfig, Retrieval, mine
from xalign.runtime.mining.cli import main
from xalign.runtime.mining.corpus import read_sentences
from xalign.runtime.mining.executor import LocalExecutor
from xalign.runtime.mining.job import JobSpec, run_job
from xalign.runtime.mining.neighbour_files import SearchSettings
from xalign.runtime.mining.shards import ReuseError
from xalign.runtime.onnx_encoder import OnnxEncoder
from xalign.training.data.bucc import BuccCorpus, read_bucc_side
from xalign.training.evaluate.bucc import candidate_scores

DATA = REPO / "tests" / "data" / "mining"
T = TypeVar("T")
R = TypeVar("R")


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """src: a gzipped file and a plain one; tgt: a folder of two shard files."""
    gz = tmp_path / "in" / "src.txt.gz"
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress((DATA / "src.txt").read_bytes(), mtime=0))
    shutil.copy(DATA / "src_more.txt", gz.parent / "src_more.txt")
    shutil.copytree(DATA / "tgt", gz.parent / "tgt")
    return (gz, gz.parent / "src_more.txt"), (gz.parent / "tgt",)


def _spec(store: Path, sides: tuple[tuple[Path, ...], tuple[Path, ...]], work: Path, **changes: Any) -> JobSpec:
    spec = JobSpec(store=store, model="tiny", src=sides[0], tgt=sides[1], work=work, out=work.parent / "pairs.tsv")
    return replace(spec, shard_size=4, progress=False, **changes)


def _distinct(paths: Iterable[Path]) -> list[str]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.iterdir()) if path.is_dir() else [path])
    return list(dict.fromkeys(s.text for s in read_sentences(files, "plain")))


def _rows(out: Path) -> list[list[str]]:
    return [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]


def test_pairs_equal_mine_over_the_distinct_texts(
    tiny_store: Path, corpus: tuple[tuple[Path, ...], tuple[Path, ...]], tmp_path: Path
) -> None:
    encoder = OnnxEncoder.from_store(tiny_store, "tiny")
    src, tgt = _distinct(corpus[0]), _distinct(corpus[1])
    assert len(src) == 19 and len(tgt) == 19  # repeated lines, blank lines, CRLF and .gz all read
    x, y = encoder.encode(src), encoder.encode(tgt)
    retrievals: tuple[Retrieval, ...] = ("max", "intersect", "forward", "backward")
    for retrieval in retrievals:  # one work folder: the later runs reuse its shards and neighbours
        config = MiningConfig(retrieval=retrieval)
        out = tmp_path / f"{retrieval}.tsv"
        report = run_job(replace(_spec(tiny_store, corpus, tmp_path / "work"), out=out, config=config))
        expected = mine(x, y, config)
        rows = _rows(out)
        assert report.pairs == len(expected) == len(rows)
        assert [(r[1], r[2]) for r in rows] == [(src[p.src], tgt[p.tgt]) for p in expected]
        np.testing.assert_allclose([float(r[0]) for r in rows], [p.score for p in expected], atol=2e-6)


class _Counting:
    """A local executor that counts tasks per label and fails after ``fail_after`` tasks in all."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.inner, self.fail_after, self.tasks = LocalExecutor(), fail_after, dict[str, int]()

    def map(self, function: Callable[[T], R], tasks: Iterable[T], label: str) -> Iterator[R]:
        for result in self.inner.map(function, tasks, label):
            self.tasks[label] = self.tasks.get(label, 0) + 1
            if self.fail_after is not None and sum(self.tasks.values()) >= self.fail_after:
                raise RuntimeError("killed")
            yield result


def test_a_stopped_job_resumes_and_writes_the_same_bytes(
    tiny_store: Path, corpus: tuple[tuple[Path, ...], tuple[Path, ...]], tmp_path: Path
) -> None:
    whole = _spec(tiny_store, corpus, tmp_path / "whole", out=tmp_path / "whole.tsv")
    run_job(whole, _Counting())
    stopped = _spec(tiny_store, corpus, tmp_path / "work", out=tmp_path / "resumed.tsv")
    with pytest.raises(RuntimeError, match="killed"):
        run_job(stopped, _Counting(fail_after=8))  # 5 shards of 4 texts a side: stops in the tgt embedding
    assert not stopped.out.exists()
    shards = sorted((stopped.work / "embeddings").rglob("shard-*.npy"))
    assert len(shards) == 8
    before = {p: p.stat().st_mtime_ns for p in shards}
    stale = stopped.work / "embeddings" / "tgt" / ".shard-00003.npy.999999.tmp"
    stale.write_bytes(b"half a shard")  # what a SIGKILL during a write leaves
    again = _Counting()
    run_job(stopped, again)
    assert not stale.exists()
    assert again.tasks == {"embed tgt": 2, "knn fwd": 5, "knn bwd": 5}
    assert {p: p.stat().st_mtime_ns for p in shards} == before
    assert stopped.out.read_bytes() == whole.out.read_bytes()
    third = _Counting()
    run_job(stopped, third)  # everything on disk: no task runs, the same output again
    assert third.tasks == {}
    assert stopped.out.read_bytes() == whole.out.read_bytes()


def test_another_k_searches_again_but_keeps_the_shards(
    tiny_store: Path, corpus: tuple[tuple[Path, ...], tuple[Path, ...]], tmp_path: Path
) -> None:
    spec = _spec(tiny_store, corpus, tmp_path / "work")
    run_job(spec, _Counting())
    again = _Counting()
    run_job(replace(spec, config=MiningConfig(k=2)), again)
    assert again.tasks == {"knn fwd": 5, "knn bwd": 5}


def test_a_changed_input_or_model_refuses_the_work_folder(
    tiny_store: Path, corpus: tuple[tuple[Path, ...], tuple[Path, ...]], tmp_path: Path
) -> None:
    spec = _spec(tiny_store, corpus, tmp_path / "work")
    run_job(spec)
    with pytest.raises(ReuseError, match=r"variant: fp32 → int8"):
        run_job(replace(spec, variant="int8"))
    with pytest.raises(ReuseError, match=r"shard size: 4 → 5"):
        run_job(replace(spec, shard_size=5))
    changed = corpus[0][1]
    changed.write_text(changed.read_text(encoding="utf-8") + "one more line\n", encoding="utf-8")
    with pytest.raises(ReuseError, match=rf"src file 2 \({changed}\) sha256: .* --restart"):
        run_job(spec)
    argv = ["--store", str(tiny_store), "--model", "tiny", "--src", *map(str, spec.src), "--tgt", *map(str, spec.tgt)]
    argv += ["--work", str(spec.work), "--out", str(tmp_path / "cli.tsv"), "--shard-size", "4", "--no-progress"]
    assert main(argv) == 2
    assert not (tmp_path / "cli.tsv").exists()
    assert main([*argv, "--restart"]) == 0
    assert len(_rows(tmp_path / "cli.tsv")) > 0


def _cli(tmp_path: Path, store: Path, *args: str) -> list[str]:
    return ["--store", str(store), "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out.tsv"), *args]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "tiny", "--src", "missing.txt", "--tgt", "{tgt}"], "missing.txt does not exist"),
        (["--model", "tiny", "--src", "{blank}", "--tgt", "{tgt}"], "src: no sentence in"),
        (["--model", "tiny", "--src", "{bad_ids}", "--tgt", "{tgt_ids}", "--ids"], "expected 'id<TAB>sentence'"),
        (["--model", "tiny", "--src", "{twice}", "--tgt", "{tgt_ids}", "--ids"], "id 's1' appears twice"),
        (["--model", "tiny", "--src", "{bad_utf8}", "--tgt", "{tgt}"], "invalid UTF-8"),
        (["--model", "tiny", "--src", "{bad_gz}", "--tgt", "{tgt}"], "cannot be read"),
        (["--model", "nobody", "--src", "{src}", "--tgt", "{tgt}"], "no model named 'nobody'"),
        (["--model", "tiny@nowhere", "--src", "{src}", "--tgt", "{tgt}"], "no alias 'nowhere'"),
        (["--model", "tiny", "--variant", "fp8", "--src", "{src}", "--tgt", "{tgt}"], "no 'fp8' variant"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    tiny_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    files = {
        "src": DATA / "src.txt",
        "tgt": DATA / "tgt",
        "tgt_ids": DATA / "tgt.ids",
        "blank": tmp_path / "blank.txt",
        "bad_ids": tmp_path / "bad.ids",
        "twice": tmp_path / "twice.ids",
        "bad_utf8": tmp_path / "latin1.txt",
        "bad_gz": tmp_path / "broken.gz",
    }
    files["blank"].write_text("\n  \n\t\n", encoding="utf-8")
    files["bad_ids"].write_text("s1\tfine\nno tab here\n", encoding="utf-8")
    files["twice"].write_text("s1\tone\ns1\ttwo\n", encoding="utf-8")
    files["bad_utf8"].write_bytes("caf\u00e9\n".encode("latin-1"))
    files["bad_gz"].write_bytes(b"not gzip at all")
    argv = _cli(tmp_path, tiny_store, *(a.format(**{k: str(v) for k, v in files.items()}) for a in args))
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "work").exists() and not (tmp_path / "out.tsv").exists()


def test_usage_errors_exit_2(tiny_store: Path, tmp_path: Path) -> None:
    base = _cli(tmp_path, tiny_store, "--model", "tiny", "--src", str(DATA / "src.txt"), "--tgt", str(DATA / "tgt"))
    for extra in (["--k", "0"], ["--margin", "cosine"], ["--shard-size", "-1"], ["--out", str(tmp_path / "no" / "x")]):
        with pytest.raises(SystemExit) as exit_info:
            main([*base, *extra])
        assert exit_info.value.code == 2
    assert not (tmp_path / "work").exists()


def test_ids_map_back_as_the_bucc_evaluation_does(tiny_store: Path, tmp_path: Path) -> None:
    argv = _cli(tmp_path, tiny_store, "--model", "tiny", "--ids", "--no-progress", "--shard-size", "3")
    assert main([*argv, "--src", str(DATA / "src.ids"), "--tgt", str(DATA / "tgt.ids")]) == 0
    src_ids, src_texts = read_bucc_side(DATA / "src.ids")
    tgt_ids, tgt_texts = read_bucc_side(DATA / "tgt.ids")
    src_unique, tgt_unique = list(dict.fromkeys(src_texts)), list(dict.fromkeys(tgt_texts))
    encoder = OnnxEncoder.from_store(tiny_store, "tiny")
    pairs = mine(encoder.encode(src_unique), encoder.encode(tgt_unique))
    bucc = BuccCorpus("en-de", src_ids, src_texts, tgt_ids, tgt_texts, frozenset())
    expected = candidate_scores(bucc, pairs, src_unique, tgt_unique)
    rows = _rows(tmp_path / "out.tsv")
    assert {(r[1], r[2]): float(r[0]) for r in rows} == pytest.approx(expected, abs=2e-6)
    assert all(r[1] not in {"s1", "s5"} and r[2] not in {"t2", "t10"} for r in rows)  # texts under two ids
    assert [float(r[0]) for r in rows] == sorted((float(r[0]) for r in rows), reverse=True)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_an_approximate_index_is_built_once_and_finds_the_exact_pairs(
    tiny_store: Path, corpus: tuple[tuple[Path, ...], tuple[Path, ...]], tmp_path: Path, kind: str
) -> None:
    exact = _spec(tiny_store, corpus, tmp_path / "exact", out=tmp_path / "exact.tsv")
    run_job(exact)
    approx = _spec(tiny_store, corpus, tmp_path / "work", search=SearchSettings(kind, nprobe=64, ef_search=64))
    run_job(approx)
    index = approx.work / "index" / f"tgt.{kind}.faiss"
    built = index.stat().st_mtime_ns
    shutil.rmtree(approx.work / "knn" / "fwd")
    (approx.work / "knn" / "fwd").mkdir()
    again = _Counting()
    run_job(approx, again)
    assert index.stat().st_mtime_ns == built and again.tasks == {"knn fwd": 5}
    assert [r[1:] for r in _rows(approx.out)] == [r[1:] for r in _rows(exact.out)]
