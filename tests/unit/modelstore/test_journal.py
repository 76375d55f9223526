"""The alias journal: aliases and history change together, a kill between the journal and the view is never
seen by readers, the old format migrates (including the state a killed old promote left), and it is bounded."""

from __future__ import annotations

import json

import pytest

from xalign.modelstore import ModelStore
from xalign.modelstore.cli import main
from xalign.modelstore.gc import collect
from xalign.modelstore.history import MAX_EVENTS, MAX_STACK, disagreements, read_journal


def _view(store: ModelStore) -> dict[str, int]:
    result: dict[str, int] = json.loads((store.root / "m" / "aliases.json").read_text())
    return result


def test_journal_and_view_agree_after_every_move(store: ModelStore) -> None:
    for version in (1, 2, 3):
        store.promote("m", version)
    store.rollback("m")
    journal = read_journal(store.root / "m")
    assert journal is not None
    assert journal.aliases == _view(store) == {"production": 2}
    assert journal.stacks == {"production": [1, 2]}
    assert [e.action for e in journal.events] == ["set", "set", "set", "rollback"]


def test_a_view_left_behind_is_not_seen_and_is_repaired(store: ModelStore, capsys: pytest.CaptureFixture[str]) -> None:
    store.promote("m", 1)
    store.promote("m", 2)
    # What a kill between the two writes leaves: the journal says 2, the view still says 1.
    (store.root / "m" / "aliases.json").write_text('{"production": 1}\n')
    assert store.aliases("m") == {"production": 2}
    assert main(["--store", str(store.root), "verify"]) == 1
    assert "aliases.json says 1, the journal says 2" in capsys.readouterr().out
    assert store.rollback("m") == 1  # a real move, and the locked write repairs the view
    assert _view(store) == {"production": 1} and disagreements(store.root / "m") == []
    (store.root / "m" / "aliases.json").write_text('{"production": 3}\n')
    assert collect(store.root).repaired == ["m"]
    assert main(["--store", str(store.root), "verify"]) == 0


def test_old_format_migrates_including_a_killed_promote(store: ModelStore) -> None:
    model = store.root / "m"
    # The old code wrote history first: killed before aliases.json, history is one promote ahead.
    (model / "alias_history.json").write_text(json.dumps({"production": [1, 2, 3], "staging": [2]}))
    (model / "aliases.json").write_text(json.dumps({"production": 2, "staging": 2}))
    assert store.aliases("m") == {"production": 2, "staging": 2}
    assert store.rollback_targets("m") == {"production": [1, 2], "staging": [2]}
    assert store.rollback("m") == 1  # the old journal made this a silent no-op ("-> 2")
    assert store.aliases("m") == {"production": 1, "staging": 2}
    # A killed old rollback (history popped, view not): the served version is pushed back.
    (model / "alias_history.json").write_text(json.dumps({"production": [1]}))
    (model / "aliases.json").write_text(json.dumps({"production": 3}))
    assert store.rollback_targets("m") == {"production": [1, 3]}


def test_history_is_bounded(store: ModelStore) -> None:
    for i in range(MAX_EVENTS + 20):
        store.promote("m", 1 + i % 3)
    journal = read_journal(store.root / "m")
    assert journal is not None
    assert len(journal.events) == MAX_EVENTS and len(journal.stacks["production"]) == MAX_STACK
    # An older, unbounded history is cut by gc.
    (store.root / "m" / "alias_history.json").write_text(json.dumps({"production": [1, 2] * 100}))
    (store.root / "m" / "aliases.json").write_text(json.dumps({"production": 2}))
    assert collect(store.root).trimmed == ["m"]
    assert len(store.rollback_targets("m")["production"]) == MAX_STACK
