"""What both trainers write beside a checkpoint: a JSON manifest of the run that produced it.

``RunManifest`` holds what every run records: steps done of the recipe's steps, the recipe (as loaded, paths
absolute) and its file name, the training data files (``training.data.corpus``: path, sha256, lines, bytes),
the last logged metrics, the library versions and the creation time. The dual-encoder trainer's
``CheckpointManifest`` (``training/trainer/checkpoint.py``) and the Backpack trainer's ``BackpackRunManifest``
(``training/backpack_training/manifest.py``) add their own fields; JSON writing and reading, the format check
and the data records are written once, here.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Self

from xalign.modelstore.manifest import DataFile
from xalign.training.data.corpus import Corpus

# The newest manifest format this code writes and reads.
RUN_MANIFEST_FORMAT = 1


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, kw_only=True)
class RunManifest:
    """The fields every run manifest has (see the module docstring); subclasses add theirs.

    A subclass names its file (``FILE``), what a reader calls it (``KIND``), and its fields that hold
    ``Corpus`` records (``CORPUS_FIELDS``).
    """

    FILE: ClassVar[str]
    KIND: ClassVar[str]
    CORPUS_FIELDS: ClassVar[tuple[str, ...]] = ("data",)

    step: int
    steps: int
    recipe: dict[str, Any]
    recipe_file: str | None
    data: list[Corpus]
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=_now)
    format: int = RUN_MANIFEST_FORMAT

    def to_json(self) -> str:
        """Indented JSON with a trailing newline."""
        return json.dumps(dataclasses.asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, raw: str) -> Self:
        """Inverse of ``to_json``; ``ValueError`` for a newer format."""
        data = json.loads(raw)
        if int(data.get("format", 0)) > RUN_MANIFEST_FORMAT:
            raise ValueError(f"{cls.KIND} format {data['format']} is newer than this xalign ({RUN_MANIFEST_FORMAT})")
        for name in cls.CORPUS_FIELDS:
            data[name] = [Corpus.from_dict(corpus) for corpus in data.get(name, [])]
        return cls(**data)

    def data_files(self) -> list[DataFile]:
        """Every training file as ``modelstore`` records it."""
        return [entry for corpus in self.data for entry in corpus.data_files()]

    def write(self, folder: Path) -> Path:
        """Write the manifest into ``folder`` as ``FILE``; returns its path."""
        path = Path(folder) / self.FILE
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def read(cls, folder: Path) -> Self:
        """The manifest in ``folder``; ``FileNotFoundError`` when it has none."""
        path = Path(folder) / cls.FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no {cls.KIND} manifest")
        return cls.from_json(path.read_text(encoding="utf-8"))


def library_versions(*modules: str) -> dict[str, str]:
    """The Python version and each module's ``__version__`` (imported here: only when a manifest is written)."""
    versions = {"python": platform.python_version()}
    for name in modules:
        versions[name] = str(importlib.import_module(name).__version__)
    return versions
