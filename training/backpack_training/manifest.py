"""The JSON manifest written beside a Backpack checkpoint: what produced it, from which data, how far it got.

``<checkpoint>/training_manifest.json`` holds the recipe (as loaded, paths absolute), the recipe file's
name and text, the sha256 and line counts of every data file (``training.data.corpus``), the init
checkpoint's weights sha256 (phase 2 runs), the tokenizer's sha256, steps done of the recipe's steps, the
last logged metrics, the library versions and the creation time. The recipe text makes the folder
reproducible on its own: ``xalign-train backpack`` on that text (with the same data and init) retrains it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from xalign.training.run_manifest import RunManifest

MANIFEST_FILE = "training_manifest.json"


@dataclass(frozen=True, kw_only=True)
class BackpackRunManifest(RunManifest):
    """What a Backpack checkpoint says about its training (see the module docstring; shared: ``RunManifest``)."""

    FILE: ClassVar[str] = MANIFEST_FILE
    KIND: ClassVar[str] = "Backpack training"

    name: str
    recipe_text: str | None
    tokenizer_sha256: str
    init: dict[str, str] | None = None
    elapsed_s: float = 0.0


def write_manifest(folder: Path, manifest: BackpackRunManifest) -> Path:
    """Write ``training_manifest.json`` into ``folder``."""
    return manifest.write(folder)


def read_manifest(folder: Path) -> BackpackRunManifest:
    """The manifest of a checkpoint folder; ``FileNotFoundError`` when it has none."""
    return BackpackRunManifest.read(folder)
