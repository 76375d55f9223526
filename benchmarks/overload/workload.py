"""The overload benchmark's workload: the plan of a run, what clients saw, the texts and the request bodies."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

ONE_TEXT = "The cat sleeps on the warm windowsill."


@dataclass(frozen=True)
class Plan:
    """The counts of one run."""

    clients: int = 32
    seconds: float = 60.0
    side: int = 200
    embed_texts: int = 200
    baseline: int = 20
    warmup: int = 3
    client_timeout_s: float = 120.0
    retry_pause_s: float = 0.1
    probe_every_s: float = 1.0
    poll_every_s: float = 0.5
    recovery_every_s: float = 0.5
    recovery_limit_s: float = 300.0
    settle_s: float = 10.0
    disconnect_texts: int = 512
    disconnect_after_s: float = 1.0


class Answer(NamedTuple):
    """One request as its client saw it; ``status`` 0 with ``note`` timeout, error or cut (load ended)."""

    kind: str
    status: int
    seconds: float
    retry_after: bool
    note: str = ""


@dataclass
class Gauges:
    """The queue gauges polled from ``/metrics``: (seconds since the load started, texts, tokens)."""

    series: list[tuple[float, float | None, float | None]] = field(default_factory=list)
    failed_polls: int = 0


@dataclass(frozen=True)
class LoadBodies:
    """Pre-encoded request bodies of the load clients (JSON bytes), one per client."""

    mine: list[bytes]
    embed: list[bytes]


def load_texts(data_dir: Path, count: int = 2000) -> tuple[list[str], list[str]]:
    """German and English Tatoeba lines (``count`` each at most); generated sentences if the files are absent."""
    sides: list[list[str]] = []
    for suffix in ("deu", "eng"):
        path = data_dir / "tatoeba" / f"tatoeba.deu-eng.{suffix}"
        if not path.exists():
            return _generated(count, 0), _generated(count, 1)
        with path.open(encoding="utf-8") as handle:
            sides.append([line.rstrip("\n") for _, line in zip(range(count), handle, strict=False)])
    return sides[0], sides[1]


def _generated(count: int, seed: int) -> list[str]:
    words = ["the", "a", "cat", "dog", "house", "river", "sees", "finds", "near", "under", "old", "green", "small"]
    return [" ".join(words[(seed + i * 7 + j * 3) % len(words)] for j in range(5 + i % 11)) for i in range(count)]


def window(texts: Sequence[str], start: int, n: int) -> list[str]:
    """``n`` texts from ``start`` on, wrapping round."""
    return [texts[(start + i) % len(texts)] for i in range(n)]


def load_bodies(model: str, src: Sequence[str], tgt: Sequence[str], plan: Plan) -> LoadBodies:
    """Each client's body: mining sides from src/tgt, embeddings from both, shifted per client."""
    mine, embed = [], []
    for i in range(plan.clients):
        sides = {"src": {"texts": window(src, i * plan.side, plan.side)}}
        sides["tgt"] = {"texts": window(tgt, i * plan.side, plan.side)}
        mine.append(json.dumps({"model": model, **sides}).encode())
        texts = window([*src, *tgt], i * plan.embed_texts, plan.embed_texts)
        embed.append(json.dumps({"model": model, "input": texts, "encoding_format": "base64"}).encode())
    return LoadBodies(mine=mine, embed=embed)


def one_text_body(model: str) -> dict[str, Any]:
    """The probe's request: one short text."""
    return {"model": model, "input": [ONE_TEXT], "encoding_format": "base64"}
