"""Copies of the session's tiny store for tests that move aliases or publish: the session store stays read-only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from xalign.modelstore.manifest import MANIFEST_FILE


def copy_store(tiny_store: Path, where: Path) -> Path:
    """A copy of the tiny store at ``where/store``."""
    store = where / "store"
    shutil.copytree(tiny_store, store)
    return store


def add_version(store: Path, version: int, evaluation: dict[str, dict[str, float]], name: str = "tiny") -> Path:
    """``name/<version>``: the files of version 1 (same checksums) with a manifest of that number and ``evaluation``.

    Written whole in a hidden folder, then renamed into place, as the store publishes (``modelstore/publish.py``).
    """
    staging = store / name / f".tmp-version-{version}"
    shutil.copytree(store / name / "1", staging)
    manifest = json.loads((staging / MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest.update(version=version, evaluation=evaluation)
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    staging.rename(store / name / str(version))
    return store / name / str(version)


def copy_model(store: Path, source: str, name: str) -> None:
    """``name/1``: ``source``'s version 1 under another name (the manifest names the model)."""
    target = store / name / "1"
    shutil.copytree(store / source / "1", target)
    path = target / MANIFEST_FILE
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["name"] = name
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def set_evaluation(
    store: Path, version: int, evaluation: dict[str, dict[str, float]], name: str = "tiny", **fields: object
) -> None:
    """Rewrite the evaluation (the gate compares these numbers) and ``fields`` in ``name/<version>``'s manifest."""
    path = store / name / str(version) / MANIFEST_FILE
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(evaluation=evaluation, **fields)
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def tatoeba(mean: float) -> dict[str, dict[str, float]]:
    """A Tatoeba evaluation whose directions and mean are all ``mean`` (what the release gate compares)."""
    return {"tatoeba": {"deu-eng": mean, "eng-deu": mean, "mean": mean}}
