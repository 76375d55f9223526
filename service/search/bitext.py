"""Bitext mining between two sides, each inline sentences or a stored index, in one model version's space.

An index side contributes its stored vectors, so it is mined in the space of the version that embedded
it; inline sides are embedded with that same version, both in one submit (admitted together or refused
together, and never half-embedded when a swap retires the version in between). Two index sides in
different spaces (other models, or one re-embedded and one not yet) cannot be compared: 409.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from xalign.modelstore.refs import parse_ref
from xalign.runtime.margin import MinedPair, MiningConfig, mine
from xalign.service.errors import ConflictError
from xalign.service.loaded_model import LoadedModel
from xalign.service.registry import ModelRegistry
from xalign.service.search.faiss_index import FloatArray
from xalign.service.search.index_service import IndexService


@dataclass(frozen=True)
class SideSpec:
    """One side of a mining request: inline ``texts`` or the name of an ``index`` (exactly one is set)."""

    texts: list[str] | None = None
    index: str | None = None


@dataclass(frozen=True)
class Side:
    """Resolved side: texts (n,) and their unit vectors (n, dim); ids are row numbers."""

    texts: list[str]
    vectors: FloatArray


@dataclass(frozen=True)
class MinedText:
    """A mined pair with its texts."""

    pair: MinedPair
    src_text: str
    tgt_text: str


@dataclass(frozen=True)
class MiningResult:
    """Pairs by descending score, the model version id of the space, and tokens embedded."""

    pairs: list[MinedText]
    model: str
    tokens: int


Space = tuple[str, int]  # (model name, version)


def _index_space(snapshots: dict[str, tuple[list[str], FloatArray, Space]]) -> Space | None:
    spaces = {space for _, _, space in snapshots.values()}
    if len(spaces) > 1:
        described = ", ".join(f"{name} is embedded with {s[0]}:{s[1]}" for name, (_, _, s) in sorted(snapshots.items()))
        raise ConflictError(f"the two indexes are in different embedding spaces ({described}); mine them once both "
                            "are re-embedded with the same version", code="embedding_spaces_differ")  # fmt: skip
    return next(iter(spaces), None)


async def _space_model(
    service: IndexService, registry: ModelRegistry, model: str | None, space: Space | None
) -> LoadedModel:
    """The loaded version that embeds the inline sides: the indexes' version, else the requested model."""
    if space is None:
        return await registry.get(model)
    name, version = space
    if model is not None:
        ref = parse_ref(model)
        if ref.name != name or ((ref.version or ref.alias) and (await registry.get(model)).manifest.version != version):
            raise ConflictError(f"model {model!r} differs from {name}:{version}, which embedded the index", "model")
    return service.model_for_space(name, version)


async def _embed_inline(model: LoadedModel | None, specs: tuple[SideSpec, SideSpec]) -> tuple[list[FloatArray], int]:
    """Vectors of every inline side, embedded in one submit: both sides are admitted together or neither is."""
    texts = [t for spec in specs if spec.texts is not None for t in spec.texts]
    if not texts:
        return [], 0
    assert model is not None
    vectors, tokens = await model.embed(texts, param=None)
    parts, start = [], 0
    for spec in specs:
        if spec.texts is not None:
            parts.append(np.asarray(vectors[start : start + len(spec.texts)], np.float32))
            start += len(spec.texts)
    return parts, tokens


async def mine_sides(
    service: IndexService,
    registry: ModelRegistry,
    src: SideSpec,
    tgt: SideSpec,
    *,
    model: str | None,
    config: MiningConfig,
) -> MiningResult:
    """Mine ``src`` against ``tgt`` with LASER's margin scoring (``runtime.margin``)."""
    snapshots: dict[str, tuple[list[str], FloatArray, Space]] = {}
    for spec in (src, tgt):
        if spec.index is not None and spec.index not in snapshots:
            texts, vectors, meta = await service.vectors(spec.index)
            snapshots[spec.index] = (texts, vectors, (meta.model, meta.model_version))
    space = _index_space(snapshots)
    inline = src.texts is not None or tgt.texts is not None
    loaded = await _space_model(service, registry, model, space) if inline or space is None else None
    inline_vectors, tokens = await _embed_inline(loaded, (src, tgt))
    embedded = iter(inline_vectors)
    sides = [
        Side(snapshots[spec.index][0], snapshots[spec.index][1])
        if spec.index is not None
        else Side(spec.texts or [], next(embedded))
        for spec in (src, tgt)
    ]
    pairs = await asyncio.to_thread(mine, sides[0].vectors, sides[1].vectors, config)
    # Only two index sides leave no model loaded here; they share one space then.
    model_id = loaded.id if loaded is not None else f"{space[0]}:{space[1]}" if space is not None else ""
    mined = [MinedText(p, sides[0].texts[p.src], sides[1].texts[p.tgt]) for p in pairs]
    return MiningResult(mined, model_id, tokens)
