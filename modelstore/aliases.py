"""Aliases (``production``, ``staging`` …) of a model's versions, kept in ``aliases.json``.

Updates take an exclusive ``flock`` on a lock file beside it, so concurrent promoters
do not lose each other's writes, and replace the file atomically, so a reader never
sees half a file. Each alias also keeps its history (``alias_history.json``), which
is what ``rollback`` walks back along.
"""

from __future__ import annotations

import fcntl
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelstore.errors import InvalidNameError, ManifestError, ReferenceNotFoundError
from modelstore.integrity import write_atomic
from modelstore.layout import ALIAS_HISTORY_FILE, ALIASES_FILE, existing_versions

DEFAULT_ALIAS = "production"
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
# "latest" always means the highest version; it cannot be assigned.
RESERVED_ALIASES = frozenset({"latest"})


def validate_alias(alias: str) -> str:
    """Return ``alias`` if it is a valid alias name (starts with a letter, not numeric, not reserved)."""
    if not _ALIAS.fullmatch(alias) or alias in RESERVED_ALIASES:
        raise InvalidNameError(
            f"alias {alias!r} must start with a letter, use letters, digits, '_', '-', "
            f"and not be one of {sorted(RESERVED_ALIASES)}"
        )
    return alias


def read_aliases(model_dir: Path) -> dict[str, int]:
    """The alias → version map of a model (empty if none was ever set)."""
    return {k: int(v) for k, v in _read_json(model_dir / ALIASES_FILE).items()}


def read_history(model_dir: Path) -> dict[str, list[int]]:
    """Per alias, the versions it pointed to, oldest first, current last."""
    return {k: [int(x) for x in v] for k, v in _read_json(model_dir / ALIAS_HISTORY_FILE).items()}


def set_alias(model_dir: Path, alias: str, version: int) -> None:
    """Point ``alias`` at an existing ``version`` and record it in the alias's history."""
    validate_alias(alias)
    with _locked(model_dir):
        _require_version(model_dir, version)
        aliases = read_aliases(model_dir)
        history = read_history(model_dir)
        aliases[alias] = version
        history.setdefault(alias, []).append(version)
        _write(model_dir, aliases, history)


def rollback_alias(model_dir: Path, alias: str) -> int:
    """Point ``alias`` back at the version it had before its last move; return that version."""
    validate_alias(alias)
    with _locked(model_dir):
        aliases = read_aliases(model_dir)
        history = read_history(model_dir)
        past = history.get(alias, [])
        if len(past) < 2:
            raise ReferenceNotFoundError(f"alias {alias!r} has no earlier version to roll back to")
        past.pop()
        aliases[alias] = past[-1]
        _write(model_dir, aliases, history)
        return past[-1]


def remove_alias(model_dir: Path, alias: str) -> None:
    """Delete ``alias`` (and its history)."""
    with _locked(model_dir):
        aliases = read_aliases(model_dir)
        history = read_history(model_dir)
        if alias not in aliases:
            raise ReferenceNotFoundError(f"alias {alias!r} is not set")
        del aliases[alias]
        history.pop(alias, None)
        _write(model_dir, aliases, history)


def _require_version(model_dir: Path, version: int) -> None:
    if version not in existing_versions(model_dir):
        raise ReferenceNotFoundError(f"{model_dir.name} has no version {version}")


def _write(model_dir: Path, aliases: dict[str, int], history: dict[str, list[int]]) -> None:
    # History first: if we crash between the two writes, the alias still names what it did before.
    write_atomic(model_dir / ALIAS_HISTORY_FILE, json.dumps(history, indent=2, sort_keys=True) + "\n")
    write_atomic(model_dir / ALIASES_FILE, json.dumps(aliases, indent=2, sort_keys=True) + "\n")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: must be a JSON object")
    return data


@contextmanager
def _locked(model_dir: Path) -> Iterator[None]:
    with (model_dir / ".aliases.lock").open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
