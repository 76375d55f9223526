"""How a delta stores one tensor's change over its base: whole (exact), or compressed (lossy, and small).

Encodings (``TensorEntry.encoding`` in ``delta.json``):

* ``full``: the trained tensor itself (a schema-1 delta's only encoding): exact;
* ``residual``: trained minus base in float16, added back to the base: vectors (LayerNorm, biases) and
  matrices too small for ``lowrank`` to pay;
* ``lowrank``: trained minus base as ``a @ b``, float16 factors of its top-``rank`` singular triples: the
  encoder's weight matrices, whose fine-tuning change is nearly low-rank (on multilingual-e5-small trained
  whole, rank 128 of 384 keeps 92-99% of the squared norm of each matrix change sampled, and the same
  Tatoeba and BUCC scores);
* ``rows``: the word embeddings: the base times one scale (all weight decay does to a row no batch touched)
  plus float16 residuals of the ``embedding_rows`` rows whose change is largest.

Decoding is elementwise, in a fixed order (``lowrank``: outer products summed rank by rank in float64, no
BLAS reduction whose order could vary), so every machine rebuilds the same bits and ``apply_delta`` can check
the applied weights against ``result_sha256`` exactly.

Stored tensors are named ``<name>`` (full) or ``<name>::<part>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

import torch

Encoding = Literal["full", "residual", "lowrank", "rows"]
SEP: Final = "::"
PARTS: Final[dict[str, tuple[str, ...]]] = {
    "full": ("",),
    "residual": ("residual",),
    "lowrank": ("a", "b"),
    "rows": ("scale", "index", "rows"),
}
EMBEDDINGS_SUFFIX: Final = "word_embeddings.weight"


@dataclass(frozen=True)
class Compression:
    """How ``extract_delta`` compresses: the rank of ``lowrank`` matrices and how many embedding rows to keep."""

    rank: int
    embedding_rows: int = 4096

    def __post_init__(self) -> None:
        if self.rank < 1 or self.embedding_rows < 0:
            raise ValueError(f"rank must be >= 1 and embedding_rows >= 0, got {self.rank}, {self.embedding_rows}")


def stored_name(name: str, part: str) -> str:
    """The name under which ``part`` of tensor ``name`` is stored in ``delta.safetensors``."""
    return name if not part else f"{name}{SEP}{part}"


def stored_names(name: str, encoding: str) -> list[str]:
    """Every stored tensor name that the entry ``name`` with ``encoding`` needs."""
    return [stored_name(name, part) for part in PARTS[encoding]]


def choose(name: str, tensor: torch.Tensor, compression: Compression) -> Encoding:
    """The encoding of a changed tensor: ``rows`` for word embeddings, ``lowrank`` where its factors are
    smaller than the matrix, else ``residual``."""
    if name.endswith(EMBEDDINGS_SUFFIX) and tensor.dim() == 2:
        return "rows"
    if tensor.dim() == 2 and compression.rank * sum(tensor.shape) < tensor.numel():
        return "lowrank"
    return "residual"


def encode(
    encoding: Encoding, trained: torch.Tensor, base: torch.Tensor, compression: Compression
) -> dict[str, torch.Tensor]:
    """The parts (by part name) that store ``trained`` over ``base`` in ``encoding``."""
    if encoding == "full":
        return {"": trained}
    change = trained.double() - base.double()
    if encoding == "residual":
        return {"residual": change.half()}
    if encoding == "lowrank":
        u, s, vh = torch.linalg.svd(change, full_matrices=False)  # u (m, k), s (k,), vh (k, n)
        rank = min(compression.rank, s.numel())
        return {"a": (u[:, :rank] * s[:rank]).half().contiguous(), "b": vh[:rank].half().contiguous()}
    return _encode_rows(trained.double(), base.double(), compression.embedding_rows)


def _encode_rows(trained: torch.Tensor, base: torch.Tensor, keep: int) -> dict[str, torch.Tensor]:
    # Rows no batch touched only decayed, by one factor: the least-squares scale of trained onto base, fitted
    # again without the rows kept whole, which would bias it.
    off = (trained - _scale(trained, base) * base).norm(dim=1)  # (vocab,) how far each row is from decaying
    index = off.topk(min(keep, off.numel())).indices.sort().values
    rest = torch.ones(off.numel(), dtype=torch.bool)
    rest[index] = False
    scale = _scale(trained[rest], base[rest])
    return {
        "scale": scale.float().reshape(1),
        "index": index.to(torch.int64),
        "rows": (trained[index] - base[index]).half(),
    }


def _scale(trained: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    return (trained * base).sum() / (base * base).sum().clamp_min(1e-30)


def decode(encoding: str, parts: Mapping[str, torch.Tensor], base: torch.Tensor) -> torch.Tensor:
    """The tensor that ``parts`` in ``encoding`` store over ``base`` (same shape and dtype as ``base``)."""
    if encoding == "full":
        return parts[""]
    if encoding == "residual":
        return base + parts["residual"].to(base.dtype)
    if encoding == "lowrank":
        a, b = parts["a"].double(), parts["b"].double()  # (m, rank), (rank, n)
        total = torch.zeros(base.shape, dtype=torch.float64)
        for r in range(a.shape[1]):  # elementwise, in rank order: the same bits on every machine
            total += a[:, r : r + 1] * b[r : r + 1]
        return (base.double() + total).to(base.dtype)
    if encoding == "rows":
        out = base * parts["scale"].to(base.dtype)
        index = parts["index"]
        out[index] = base[index] + parts["rows"].to(base.dtype)
        return out
    raise ValueError(f"unknown delta encoding {encoding!r}")


def parts_of(name: str, encoding: str, stored: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The parts of entry ``name`` from the stored tensors, by part name."""
    return {part: stored[stored_name(name, part)] for part in PARTS[encoding]}
