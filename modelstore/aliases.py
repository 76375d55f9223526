"""Aliases (``production``, ``staging`` …) of a model's versions: moves, rollbacks and removals.

The truth is the journal ``alias_history.json`` (``modelstore.history``); ``aliases.json`` is its view for
outside readers. Every change takes an exclusive ``flock`` on a lock file beside them, so concurrent movers do
not lose each other's writes, rewrites the journal atomically (one file: aliases and history change together)
and then the view. Readers here read the journal, so a kill between the two writes is never seen as a
disagreement; the next locked write or ``xalign-store gc`` repairs the view.
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from xalign.modelstore.errors import InvalidNameError, ReferenceNotFoundError, StoreError
from xalign.modelstore.history import Action, AliasEvent, Journal, commit, current_journal, event, read_current_aliases
from xalign.modelstore.layout import ALIAS_LOCK_FILE, existing_versions

DEFAULT_ALIAS = "production"
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
# "latest" always means the highest version; it cannot be assigned.
RESERVED_ALIASES = frozenset({"latest"})


class AliasConflictError(StoreError):
    """The alias moved while a release was deciding; nothing was changed."""


def validate_alias(alias: str) -> str:
    """Return ``alias`` if it is a valid alias name (starts with a letter, not numeric, not reserved)."""
    if not _ALIAS.fullmatch(alias) or alias in RESERVED_ALIASES:
        raise InvalidNameError(
            f"alias {alias!r} must start with a letter, use letters, digits, '_', '-', "
            f"and not be one of {sorted(RESERVED_ALIASES)}"
        )
    return alias


def read_aliases(model_dir: Path) -> dict[str, int]:
    """The alias → version map of a model (empty if none was ever set); the journal's when there is one."""
    return read_current_aliases(model_dir)


def read_history(model_dir: Path) -> dict[str, list[int]]:
    """Per alias, the versions it pointed to (the rollback stack), oldest first, current last."""
    return {alias: list(stack) for alias, stack in current_journal(model_dir).stacks.items()}


def read_events(model_dir: Path) -> list[AliasEvent]:
    """The recorded moves of every alias, oldest first (the last ``history.MAX_EVENTS``)."""
    return list(current_journal(model_dir).events)


def set_alias(
    model_dir: Path,
    alias: str,
    version: int,
    *,
    action: Action = "set",
    actor: str | None = None,
    expect: int | Literal["any"] | None = "any",
    gate: str = "not gated",
    detail: str = "",
) -> bool:
    """Point ``alias`` at an existing ``version`` and record the move; False if it was there already.

    ``expect`` (a version, or None for "not set") refuses the move with ``AliasConflictError`` when the alias
    no longer names what the caller decided on; the default ``"any"`` moves it from wherever it is.
    """
    validate_alias(alias)
    with transaction(model_dir) as journal:
        _require_version(model_dir, version)
        before = journal.aliases.get(alias)
        if expect not in ("any", before):
            raise AliasConflictError(f"{model_dir.name}@{alias} moved to {before} meanwhile; nothing changed")
        if before == version:
            return False
        journal.move(event(alias, action, before, version, actor, gate=gate, detail=detail))
        return True


def rollback_alias(model_dir: Path, alias: str, actor: str | None = None) -> int:
    """Point ``alias`` back at the version it had before its last move; return that version (never gated)."""
    validate_alias(alias)
    with transaction(model_dir) as journal:
        stack = journal.stacks.get(alias, [])
        if len(stack) < 2:
            raise ReferenceNotFoundError(f"alias {alias!r} has no earlier version to roll back to")
        journal.pop(event(alias, "rollback", stack[-1], stack[-2], actor))
        return stack[-1]


def remove_alias(model_dir: Path, alias: str, actor: str | None = None) -> None:
    """Delete ``alias`` (and its rollback stack; the removal is recorded)."""
    with transaction(model_dir) as journal:
        if alias not in journal.aliases:
            raise ReferenceNotFoundError(f"alias {alias!r} is not set")
        journal.remove(event(alias, "remove", journal.aliases[alias], None, actor))


@contextmanager
def transaction(model_dir: Path) -> Iterator[Journal]:
    """Lock the model's aliases, yield its journal, then write it and its view (also when nothing changed:
    that repairs a view a killed writer left behind). An exception writes nothing."""
    with locked(model_dir):
        journal = current_journal(model_dir).bounded()
        yield journal
        commit(model_dir, journal)


@contextmanager
def locked(model_dir: Path) -> Iterator[None]:
    """Hold the model's alias lock (an exclusive ``flock``, released by the kernel if the holder dies)."""
    with (model_dir / ALIAS_LOCK_FILE).open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _require_version(model_dir: Path, version: int) -> None:
    if version not in existing_versions(model_dir):
        raise ReferenceNotFoundError(f"{model_dir.name} has no version {version}")
