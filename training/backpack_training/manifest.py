"""The JSON manifest written beside a Backpack checkpoint: what produced it, from which data, how far it got.

``<checkpoint>/training_manifest.json`` holds the recipe (as loaded, paths absolute), the recipe file's
name and text, the sha256 and line counts of every data file (``training.data.corpus``), the init
checkpoint's weights sha256 (phase 2 runs), the tokenizer's sha256, steps done of the recipe's steps, the
last logged metrics, the library versions and the creation time. The recipe text makes the folder
reproducible on its own: ``xalign-train backpack`` on that text (with the same data and init) retrains it.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xalign.training.data.corpus import Corpus

MANIFEST_FILE = "training_manifest.json"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class BackpackRunManifest:
    """What a Backpack checkpoint says about its training (see the module docstring)."""

    name: str
    step: int
    steps: int
    recipe: dict[str, Any]
    recipe_file: str | None
    recipe_text: str | None
    data: list[Corpus]
    tokenizer_sha256: str
    init: dict[str, str] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    format: int = MANIFEST_FORMAT

    def to_json(self) -> str:
        """Indented JSON with a trailing newline."""
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, raw: str) -> BackpackRunManifest:
        """Inverse of ``to_json``; ``ValueError`` for a newer format."""
        data = json.loads(raw)
        if int(data.get("format", 0)) > MANIFEST_FORMAT:
            raise ValueError(f"manifest format {data['format']} is newer than this xalign ({MANIFEST_FORMAT})")
        data["data"] = [Corpus.from_dict(corpus) for corpus in data["data"]]
        return cls(**data)


def write_manifest(folder: Path, manifest: BackpackRunManifest) -> Path:
    """Write ``training_manifest.json`` into ``folder``."""
    path = Path(folder) / MANIFEST_FILE
    path.write_text(manifest.to_json(), encoding="utf-8")
    return path


def read_manifest(folder: Path) -> BackpackRunManifest:
    """The manifest of a checkpoint folder; ``FileNotFoundError`` when it has none."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no Backpack training manifest")
    return BackpackRunManifest.from_json(path.read_text(encoding="utf-8"))


def library_versions() -> dict[str, str]:
    """Versions of python, torch and tokenizers."""
    import tokenizers  # noqa: PLC0415 - only when a manifest is written
    import torch  # noqa: PLC0415

    return {"python": platform.python_version(), "torch": torch.__version__, "tokenizers": tokenizers.__version__}
