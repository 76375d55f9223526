"""Tatoeba reader and 1-NN accuracy, on the 60-line deu-eng copy and on encoders with known answers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from table_encoder import TableEncoder

from xalign.training.evaluate.tatoeba import (
    TatoebaResult,
    evaluate_tatoeba,
    read_tatoeba,
    retrieval_accuracy,
)

MINI = Path(__file__).resolve().parents[2] / "data" / "tatoeba_mini"


def _unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d))
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def test_reads_the_mini_files() -> None:
    pair = read_tatoeba(MINI, "deu")
    assert pair.lang == "deu"
    assert len(pair.src) == len(pair.eng) == 60
    assert pair.src[0] == "Maria sagte, sie wisse nicht, wo Tom sei."
    assert pair.eng[0] == "Mary said she didn't know where Tom was."
    assert all(s and not s.endswith("\n") for s in pair.src + pair.eng)


def test_unequal_line_counts_name_both_files(tmp_path: Path) -> None:
    shutil.copy(MINI / "tatoeba.deu-eng.deu", tmp_path)
    lines = (MINI / "tatoeba.deu-eng.eng").read_text(encoding="utf-8").splitlines()[:-1]
    (tmp_path / "tatoeba.deu-eng.eng").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"tatoeba\.deu-eng\.deu has 60 lines but .*tatoeba\.deu-eng\.eng has 59"):
        read_tatoeba(tmp_path, "deu")


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"tatoeba\.fra-eng\.fra"):
        read_tatoeba(tmp_path, "fra")


def test_accuracy_on_a_table_encoder_with_known_errors() -> None:
    pair = read_tatoeba(MINI, "deu")
    rng = np.random.default_rng(0)
    concepts = _unit_rows(rng, 60, 64)
    noisy = concepts + 0.05 * _unit_rows(rng, 60, 64)
    eng_vectors = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    # Swap the English vectors of three pairs of lines: those 6 sentences are wrong both ways.
    for a, b in [(3, 4), (10, 20), (30, 59)]:
        eng_vectors[[a, b]] = eng_vectors[[b, a]]
    table = dict(zip(pair.src, concepts, strict=True)) | dict(zip(pair.eng, eng_vectors, strict=True))
    encoder = TableEncoder(table)
    [result] = evaluate_tatoeba(encoder, MINI, ["deu"])
    assert result == TatoebaResult(lang="deu", n=60, to_eng=90.0, from_eng=90.0)
    assert result.to_eng_error == pytest.approx(10.0)
    assert result.mean == 90.0
    assert encoder.calls == [60, 60]


def test_directions_differ_when_retrieval_is_asymmetric() -> None:
    eye = np.eye(3, dtype=np.float32)
    queries = eye
    # t1 is nearer q0 (0.89) than q1 (0.45): q→t is all right, t1→q picks q0.
    t1 = (eye[0] + 0.5 * eye[1]) / np.sqrt(1.25)
    targets = np.stack([eye[0], t1, eye[2]]).astype(np.float32)
    assert retrieval_accuracy(queries, targets) == 100.0
    assert retrieval_accuracy(targets, queries) == pytest.approx(200 / 3)


def test_margin_variant_uses_laser_scoring() -> None:
    rng = np.random.default_rng(2)
    x = _unit_rows(rng, 20, 16).astype(np.float32)
    y = (x + 0.1 * _unit_rows(rng, 20, 16)).astype(np.float32)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    assert retrieval_accuracy(x, y, margin="ratio") == 100.0


def test_accuracy_refuses_mismatched_or_unnormalised_input() -> None:
    eye = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="same shape"):
        retrieval_accuracy(eye, eye[:2])
    with pytest.raises(ValueError, match="L2-normalised"):
        retrieval_accuracy(2 * eye, eye)
