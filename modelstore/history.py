"""The alias journal ``alias_history.json``: the one place where a model's aliases and their history live.

The journal holds, in one file replaced atomically, the current alias → version map, per alias the stack of
versions it held (what ``rollback`` walks back along, current last, capped at ``MAX_STACK``) and the last
``MAX_EVENTS`` moves (who, what, from which version to which, when, and the release gate's verdict).
``aliases.json`` is a view of the journal's map, written after it for the readers outside this package: a kill
between the two writes leaves the view one move behind, never the journal, and every locked write (and
``xalign-store gc``) rewrites the view. The previous format, ``{alias: [versions]}`` written before
``aliases.json``, is migrated when read (see ``migrate``).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xalign.modelstore.errors import ManifestError
from xalign.modelstore.integrity import write_atomic
from xalign.modelstore.layout import ALIAS_HISTORY_FILE, ALIASES_FILE

JOURNAL_FORMAT: Final = 2
MAX_STACK: Final = 50  # rollback targets kept per alias
MAX_EVENTS: Final = 200  # moves kept in the event list

# initial: first production of a model (nothing to compare with); promote: passed the gate; force: promoted
# although it failed or could not be compared; rollback: back to the previous version (never gated);
# set: an alias other than production moved (never gated); seed: copied from another store; remove: deleted.
Action = Literal["initial", "promote", "force", "rollback", "set", "seed", "remove"]


class AliasEvent(BaseModel):
    """One move of one alias."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    at: datetime
    alias: str
    action: Action
    from_version: int | None = None
    to_version: int | None = None
    actor: str
    # "passed", "failed (forced)", "not compared (forced)", "not gated" …; the reason in ``detail``.
    gate: str = "not gated"
    detail: str = ""


class Journal(BaseModel):
    """The content of ``alias_history.json``."""

    model_config = ConfigDict(extra="ignore")

    format: int = JOURNAL_FORMAT
    aliases: dict[str, int] = Field(default_factory=dict)
    stacks: dict[str, list[int]] = Field(default_factory=dict)
    events: list[AliasEvent] = Field(default_factory=list)

    def move(self, event: AliasEvent) -> None:
        """Apply a move (not a rollback or a removal): the alias names ``event.to_version``, pushed on its stack."""
        assert event.to_version is not None
        self.aliases[event.alias] = event.to_version
        stack = self.stacks.setdefault(event.alias, [])
        stack.append(event.to_version)
        del stack[:-MAX_STACK]
        self.record(event)

    def pop(self, event: AliasEvent) -> None:
        """Apply a rollback: drop the stack's top, the alias names the version below it."""
        stack = self.stacks[event.alias]
        stack.pop()
        self.aliases[event.alias] = stack[-1]
        self.record(event)

    def remove(self, event: AliasEvent) -> None:
        """Delete an alias and its stack."""
        self.aliases.pop(event.alias, None)
        self.stacks.pop(event.alias, None)
        self.record(event)

    def record(self, event: AliasEvent) -> None:
        """Append an event, keeping the last ``MAX_EVENTS``."""
        self.events.append(event)
        del self.events[:-MAX_EVENTS]

    def bounded(self) -> Journal:
        """A copy with every stack and the event list cut to their caps (older journals may hold more)."""
        stacks = {alias: stack[-MAX_STACK:] for alias, stack in self.stacks.items()}
        return Journal(aliases=dict(self.aliases), stacks=stacks, events=self.events[-MAX_EVENTS:])


def default_actor() -> str:
    """``user@host`` of this process (the uid when the user has no name, as in some containers)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def event(
    alias: str, action: Action, before: int | None, after: int | None, actor: str | None, **gate: str
) -> AliasEvent:
    """An event stamped now (UTC); ``gate`` may give ``gate`` and ``detail``."""
    return AliasEvent(
        at=datetime.now(UTC),
        alias=alias,
        action=action,
        from_version=before,
        to_version=after,
        actor=actor or default_actor(),
        **gate,
    )


def read_view(model_dir: Path) -> dict[str, int]:
    """``aliases.json`` as written (empty if absent): the view, not the truth, when a journal exists."""
    return {str(k): int(v) for k, v in _read_json(model_dir / ALIASES_FILE).items()}


def read_current_aliases(model_dir: Path) -> dict[str, int]:
    """The alias map alone (what the service resolves with at every poll): the journal's, without validating
    its events; ``aliases.json`` when there is no journal yet."""
    path = model_dir / ALIAS_HISTORY_FILE
    data = _read_json(path)
    if isinstance(data.get("format"), int) and isinstance(data.get("aliases"), dict):
        return {str(k): int(v) for k, v in data["aliases"].items()}
    journal = read_journal(model_dir)
    return dict(journal.aliases) if journal is not None else read_view(model_dir)


def read_journal(model_dir: Path) -> Journal | None:
    """The journal (migrated from the old format if needed), or None when the model has none yet."""
    path = model_dir / ALIAS_HISTORY_FILE
    if not path.exists():
        return None
    data = _read_json(path)
    if "format" not in data and all(isinstance(v, list) for v in data.values()):
        return migrate({str(k): [int(x) for x in v] for k, v in data.items()}, read_view(model_dir))
    try:
        return Journal.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(f"{path}: invalid alias journal: {exc.error_count()} error(s)") from exc


def current_journal(model_dir: Path) -> Journal:
    """The journal, or one made from ``aliases.json`` alone (stores from before any history)."""
    journal = read_journal(model_dir)
    if journal is not None:
        return journal
    view = read_view(model_dir)
    return Journal(aliases=view, stacks={alias: [version] for alias, version in view.items()})


def migrate(old: dict[str, list[int]], view: dict[str, int]) -> Journal:
    """The journal of a store written by the old code: history ``{alias: [versions]}`` written before the view.

    The view is what was served, so it gives the aliases. A stack whose top is not the served version comes
    from a move killed between the two writes: a promote (history one ahead: its top is dropped) or a rollback
    (history already popped: the served version is pushed back), so ``rollback`` moves the alias again.
    """
    stacks: dict[str, list[int]] = {}
    for alias, served in view.items():
        stack = list(old.get(alias, []))
        if len(stack) >= 2 and stack[-1] != served and stack[-2] == served:
            stack.pop()
        elif not stack or stack[-1] != served:
            stack.append(served)
        stacks[alias] = stack
    return Journal(aliases=dict(view), stacks=stacks)


def commit(model_dir: Path, journal: Journal) -> None:
    """Write the journal, then the ``aliases.json`` view of it (callers hold the alias lock)."""
    write_atomic(model_dir / ALIAS_HISTORY_FILE, journal.model_dump_json(indent=1) + "\n")
    write_view(model_dir, journal.aliases)


def write_view(model_dir: Path, aliases: dict[str, int]) -> None:
    """Replace ``aliases.json`` with ``aliases`` (the format external readers know)."""
    write_atomic(model_dir / ALIASES_FILE, json.dumps(aliases, indent=2, sort_keys=True) + "\n")


def disagreements(model_dir: Path) -> list[str]:
    """How ``aliases.json`` differs from the journal (empty when they agree or there is no journal)."""
    journal = read_journal(model_dir)
    if journal is None:
        return []
    view = read_view(model_dir)
    return [
        f"{alias}: aliases.json says {view.get(alias)}, the journal says {journal.aliases.get(alias)}"
        for alias in sorted(set(view) | set(journal.aliases))
        if view.get(alias) != journal.aliases.get(alias)
    ]


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
