"""The on-disk layout: ``<store>/<name>/<version>/`` with integer versions, hidden temporary folders."""

from __future__ import annotations

from pathlib import Path

TMP_PREFIX = ".tmp-"
ALIASES_FILE = "aliases.json"
ALIAS_HISTORY_FILE = "alias_history.json"
ALIAS_LOCK_FILE = ".aliases.lock"


def existing_versions(model_dir: Path) -> list[int]:
    """Sorted version numbers published under ``model_dir``; hidden and temporary entries are ignored."""
    if not model_dir.is_dir():
        return []
    found = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit() and p.name[0] != "0"]
    return sorted(found)


def model_names(store_root: Path) -> list[str]:
    """Names of the models in a store: visible folders only."""
    if not store_root.is_dir():
        return []
    return sorted(p.name for p in store_root.iterdir() if p.is_dir() and not p.name.startswith("."))
