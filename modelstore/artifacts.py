"""The artifact contract: what a published version's files are called, what its ONNX graph takes and gives,
and the ``senses.npz`` schema, written and read by this one module.

Export writes versions with these names and the runtime reads them with the same names, so the two sides
cannot drift apart: a change here is a change of the contract (and of ``manifest.SCHEMA_VERSION`` when old
versions can no longer be read). NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

TOKENIZER_FILE = "tokenizer.json"
SENSES_FILE = "senses.npz"
# The ONNX file of each numeric variant; fp32 is the reference every other variant is checked against.
VARIANT_FILES: dict[str, str] = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}
ONNX_FILE = VARIANT_FILES["fp32"]

# Every graph takes (batch, seq) int64 ids and mask; token_type_ids is never an input.
INPUT_NAMES: tuple[str, str] = ("input_ids", "attention_mask")
# (batch, dim), pooled and L2-normalised inside the graph: the one output of a dual encoder.
SENTENCE_EMBEDDING = "sentence_embedding"
# A Backpack graph adds (batch, seq, dim) contextual states, (batch, seq, k, dim) sense vectors and
# (batch, k, seq, seq) sense weights alpha.
BACKPACK_OUTPUTS: tuple[str, str, str, str] = (SENTENCE_EMBEDDING, "contextual", "senses", "alpha")
OUTPUT_RANKS: dict[str, int] = {SENTENCE_EMBEDDING: 2, "contextual": 3, "senses": 4, "alpha": 4}

_SENSE_ARRAYS = ("top_ids", "top_scores", "output_embedding", "n_senses", "n_top")


class SenseTableError(ValueError):
    """``senses.npz`` is missing an array or its arrays disagree in shape."""


@dataclass(frozen=True)
class SenseTable:
    """Precomputed top words of every (token, sense) and the output embedding E for next-word contributions."""

    top_ids: npt.NDArray[np.int32]  # (vocab, k, n_top), best first
    top_scores: npt.NDArray[np.float32]  # (vocab, k, n_top): C(t)[l]·E_w of those words
    output_embedding: npt.NDArray[np.float32]  # (vocab, d)

    @property
    def vocab_size(self) -> int:
        """Rows of the table: one per token id."""
        return int(self.top_ids.shape[0])

    @property
    def n_senses(self) -> int:
        """Senses per token (k)."""
        return int(self.top_ids.shape[1])

    @property
    def n_top(self) -> int:
        """Top words stored per (token, sense)."""
        return int(self.top_ids.shape[2])

    @property
    def dim(self) -> int:
        """Width of the output embedding (d)."""
        return int(self.output_embedding.shape[1])

    def check(self, n_senses: int, n_top: int, where: str) -> None:
        """Raise ``SenseTableError`` unless the arrays agree with each other and with the stated sizes."""
        if self.top_ids.ndim != 3 or self.top_scores.shape != self.top_ids.shape:
            raise SenseTableError(f"{where}: top_ids {self.top_ids.shape} and top_scores {self.top_scores.shape}")
        if self.output_embedding.ndim != 2 or self.output_embedding.shape[0] != self.vocab_size:
            raise SenseTableError(f"{where}: output_embedding {self.output_embedding.shape} for {self.vocab_size} ids")
        if (self.n_senses, self.n_top) != (n_senses, n_top):
            found = (self.n_senses, self.n_top)
            raise SenseTableError(f"{where}: arrays hold (k, n_top) = {found}, the file says {(n_senses, n_top)}")
        if self.top_ids.size and not (self.top_ids.min() >= 0 and self.top_ids.max() < self.vocab_size):
            raise SenseTableError(f"{where}: top_ids outside the vocabulary of {self.vocab_size}")


def write_senses(table: SenseTable, path: Path) -> Path:
    """Write ``senses.npz`` uncompressed (the runtime reads it whole at load), after checking its shapes."""
    table.check(table.n_senses, table.n_top, str(path))
    with Path(path).open("wb") as handle:
        np.savez(
            handle,
            top_ids=table.top_ids.astype(np.int32, copy=False),
            top_scores=table.top_scores.astype(np.float32, copy=False),
            output_embedding=table.output_embedding.astype(np.float32, copy=False),
            n_senses=np.int64(table.n_senses),
            n_top=np.int64(table.n_top),
        )
    return Path(path)


def read_senses(path: Path) -> SenseTable:
    """Read every array of a ``senses.npz`` into memory (the file is closed afterwards) and check the shapes."""
    with np.load(path, allow_pickle=False) as data:
        missing = [name for name in _SENSE_ARRAYS if name not in data.files]
        if missing:
            raise SenseTableError(f"{path}: missing arrays {missing}")
        arrays = {name: np.asarray(data[name]) for name in _SENSE_ARRAYS}
    table = SenseTable(
        top_ids=arrays["top_ids"].astype(np.int32, copy=False),
        top_scores=arrays["top_scores"].astype(np.float32, copy=False),
        output_embedding=arrays["output_embedding"].astype(np.float32, copy=False),
    )
    table.check(int(arrays["n_senses"]), int(arrays["n_top"]), str(path))
    return table
