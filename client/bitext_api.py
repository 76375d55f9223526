"""``POST /v1/bitext/mine``: margin-based mining between two sides, each inline texts or a stored index."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, Unpack

from xalign.client.calls import Call, parsed
from xalign.client.endpoints import Endpoint, R, Resource
from xalign.client.wire import Usage, WireModel

Margin = Literal["ratio", "distance", "absolute"]
Retrieval = Literal["forward", "backward", "intersect", "max"]


@dataclass(frozen=True)
class IndexSide:
    """A side that is a stored index (``client.indexes``): its stored vectors are mined."""

    index: str


@dataclass(frozen=True)
class FilesSide:
    """A side of a mining job: files (or folders) under the service's jobs folder, one sentence per line."""

    files: Sequence[str]


# Inline texts (a list of sentences), an index, or (jobs only) files.
Side = Sequence[str] | IndexSide
JobSide = Sequence[str] | IndexSide | FilesSide


class Pair(WireModel):
    """A mined pair: ids are rows of inline texts, ids in an index, or non-blank line numbers of a job's files."""

    src_id: int
    tgt_id: int
    src_text: str
    tgt_text: str
    score: float | None = None  # margin score; null where undefined (ratio over a zero neighbourhood)
    cosine: float


class MineResult(WireModel):
    """``POST /v1/bitext/mine``'s answer: pairs sorted by descending score."""

    object: str = "list"
    pairs: list[Pair]
    model: str
    usage: Usage


def side_body(side: JobSide) -> dict[str, Any]:
    """A side as the request body writes it: ``{"texts": [...]}``, ``{"index": name}`` or ``{"files": [...]}``."""
    if isinstance(side, IndexSide):
        return {"index": side.index}
    if isinstance(side, FilesSide):
        return {"files": list(side.files)}
    if isinstance(side, str):
        raise TypeError("a side is a list of texts, IndexSide(name) or FilesSide([...]), not one string")
    return {"texts": list(side)}


class MiningSettings(TypedDict, total=False):
    """How ``client.mine`` and ``client.jobs.create`` mine; the service's defaults apply to those not given."""

    model: str  # for inline sides; must match an index side's model
    margin: Margin
    k: int  # neighbourhood size
    retrieval: Retrieval
    threshold: float  # keep pairs scoring at least this


def mining_body(src: JobSide, tgt: JobSide, settings: MiningSettings) -> dict[str, Any]:
    """The body shared by a synchronous mining request and a mining job."""
    return {"src": side_body(src), "tgt": side_body(tgt), **settings}


class MiningCalls(Resource[R]):
    """``client.mine``: synchronous mining (larger inputs: ``client.jobs``)."""

    @Endpoint
    @staticmethod
    def mine(src: Side, tgt: Side, **settings: Unpack[MiningSettings]) -> Call[MineResult]:
        """Mine parallel pairs with LASER's margin scoring, answered at once (small inputs; else ``client.jobs``).

        >>> result = client.mine(["the cat", "a dog"], ["ein Hund", "die Katze"], threshold=1.0)
        >>> [(p.src_id, p.tgt_id) for p in result.pairs]
        [(0, 1), (1, 0)]
        """
        return Call("POST", "/v1/bitext/mine", parsed(MineResult), json=mining_body(src, tgt, settings))
