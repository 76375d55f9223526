from __future__ import annotations

import json

import pytest

from xalign.modelstore import InvalidNameError, ModelStore, ReferenceNotFoundError
from xalign.modelstore.refs import parse_ref


def test_default_is_latest_until_production_is_set(store: ModelStore) -> None:
    assert store.resolve(parse_ref("m")) == 3
    store.promote("m", 2)
    assert store.resolve(parse_ref("m")) == 2
    assert store.resolve(parse_ref("m@latest")) == 3
    assert store.resolve(parse_ref("m@production")) == 2


def test_promote_and_rollback_survive_a_reload(store: ModelStore) -> None:
    store.promote("m", 1)
    store.promote("m", 3)
    store.promote("m", 2, alias="staging")
    reloaded = ModelStore(store.root)
    assert reloaded.aliases("m") == {"production": 3, "staging": 2}
    assert reloaded.rollback("m") == 1
    again = ModelStore(store.root)
    assert again.resolve(parse_ref("m")) == 1
    assert json.loads((store.root / "m" / "aliases.json").read_text()) == {"production": 1, "staging": 2}
    with pytest.raises(ReferenceNotFoundError, match="no earlier version"):
        again.rollback("m")


def test_unknown_references_are_typed_errors(store: ModelStore) -> None:
    with pytest.raises(ReferenceNotFoundError, match="no version 9"):
        store.resolve(parse_ref("m:9"))
    with pytest.raises(ReferenceNotFoundError, match="no alias 'canary'"):
        store.resolve(parse_ref("m@canary"))
    with pytest.raises(ReferenceNotFoundError):
        store.promote("m", 9)
    with pytest.raises(LookupError, match="no model named 'other'"):
        store.resolve(parse_ref("other"))


@pytest.mark.parametrize("alias", ["latest", "1", "", "bad alias", "../x"])
def test_invalid_aliases_are_refused(store: ModelStore, alias: str) -> None:
    with pytest.raises(InvalidNameError):
        store.promote("m", 1, alias=alias)
