"""Tatoeba similarity search (Artetxe & Schwenk 2019; LASER ``data/tatoeba/v1``), both directions.

Files: ``tatoeba.{xxx}-eng.{xxx}`` and ``tatoeba.{xxx}-eng.eng``, line i of one the translation of
line i of the other (1,000 pairs per language). For every sentence the nearest sentence of the
other side by cosine (1-NN, exact) is retrieved; it is correct when it is line i. This is the
metric of LASER's paper (reported as error rate) and of XTREME and MTEB (reported as accuracy);
both are returned here, in percent. LASER's later ``xsim.py`` offers margin scoring instead of
plain cosine: pass ``margin="ratio"`` to get that variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from xalign.runtime.margin import Margin, best_candidates, check_normalized, knn, knn_means
from xalign.training.evaluate.encoder import Encoder

DEFAULT_LANGS = ("deu", "fra", "ces", "spa", "rus")


@dataclass(frozen=True)
class TatoebaPair:
    """The aligned sentences of one language: ``src[i]`` (xxx) translates ``eng[i]``."""

    lang: str
    src: list[str]
    eng: list[str]


@dataclass(frozen=True)
class TatoebaResult:
    """Accuracy in percent of one language, both directions, over ``n`` sentence pairs."""

    lang: str
    n: int
    to_eng: float  # xxx → eng: each xxx sentence retrieves among the English ones
    from_eng: float  # eng → xxx

    @property
    def mean(self) -> float:
        """Mean accuracy of the two directions, in percent."""
        return (self.to_eng + self.from_eng) / 2

    @property
    def to_eng_error(self) -> float:
        """Error rate xxx → eng in percent (LASER's figure)."""
        return 100.0 - self.to_eng

    @property
    def from_eng_error(self) -> float:
        """Error rate eng → xxx in percent."""
        return 100.0 - self.from_eng


def read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 file without their line endings (a final newline adds no empty line)."""
    with path.open(encoding="utf-8", newline="") as f:
        return [line.rstrip("\r\n") for line in f]


def tatoeba_files(tatoeba_dir: Path, lang: str) -> tuple[Path, Path]:
    """Paths of (xxx side, English side) of language ``lang`` (ISO 639-3, e.g. ``deu``)."""
    return tatoeba_dir / f"tatoeba.{lang}-eng.{lang}", tatoeba_dir / f"tatoeba.{lang}-eng.eng"


def read_tatoeba(tatoeba_dir: Path, lang: str) -> TatoebaPair:
    """Read one language's pair of files; ``ValueError`` naming both files if line counts differ."""
    src_path, eng_path = tatoeba_files(Path(tatoeba_dir), lang)
    for path in (src_path, eng_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: Tatoeba file not found")
    src, eng = read_lines(src_path), read_lines(eng_path)
    if len(src) != len(eng):
        raise ValueError(
            f"{src_path} has {len(src)} lines but {eng_path} has {len(eng)}; the files must be line-aligned"
        )
    if not src:
        raise ValueError(f"{src_path}: no sentences")
    return TatoebaPair(lang=lang, src=src, eng=eng)


def retrieval_accuracy(
    queries: npt.NDArray[np.float32], targets: npt.NDArray[np.float32], margin: Margin = "absolute", k: int = 4
) -> float:
    """Percent of rows i of ``queries`` (n, d) whose best row of ``targets`` (n, d) is row i.

    ``absolute`` is plain cosine 1-NN (LASER paper, XTREME, MTEB); ``ratio``/``distance`` score the
    k nearest with LASER's margin first, as LASER's ``xsim.py`` does. Rows must be unit vectors.
    """
    q, t = check_normalized(queries, "queries"), check_normalized(targets, "targets")
    if q.shape != t.shape:
        raise ValueError(f"queries {q.shape} and targets {t.shape} must have the same shape")
    if margin == "absolute":
        _, ids = knn(q, t, 1)
        predicted = ids[:, 0]
    else:
        q_mean, t_mean = knn_means(q, t, k)
        predicted = best_candidates(q, t, q_mean, t_mean, k=k, margin=margin).index
    return float(100.0 * np.mean(predicted == np.arange(q.shape[0])))


def evaluate_pair(encoder: Encoder, pair: TatoebaPair, margin: Margin = "absolute") -> TatoebaResult:
    """Embed both sides of one language and score retrieval in both directions."""
    src, eng = encoder.encode(pair.src), encoder.encode(pair.eng)
    return TatoebaResult(
        lang=pair.lang,
        n=len(pair.src),
        to_eng=retrieval_accuracy(src, eng, margin),
        from_eng=retrieval_accuracy(eng, src, margin),
    )


def evaluate_tatoeba(
    encoder: Encoder, tatoeba_dir: Path, langs: Sequence[str] = DEFAULT_LANGS, margin: Margin = "absolute"
) -> list[TatoebaResult]:
    """Tatoeba accuracy of ``encoder`` for every language in ``langs``, in that order.

    All files are read (and checked) before anything is encoded, so a missing language fails fast.
    """
    pairs = [read_tatoeba(tatoeba_dir, lang) for lang in langs]
    return [evaluate_pair(encoder, pair, margin) for pair in pairs]
