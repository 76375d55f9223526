from __future__ import annotations

import json
from pathlib import Path

import pytest
from store_specs import make_files, make_spec

from xalign.modelstore import SCHEMA_VERSION, InvalidNameError, ManifestError, ModelStore, SchemaVersionError
from xalign.modelstore.manifest import parse_manifest
from xalign.modelstore.names import MAX_NAME_LENGTH, validate_name
from xalign.modelstore.refs import parse_ref


@pytest.mark.parametrize(
    "name",
    ["", "..", "../evil", "a/b", "a\\b", "x..y", ".hidden", "-dash", "a" * (MAX_NAME_LENGTH + 1), "nul\x00", "sp ace"],
)
def test_unsafe_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidNameError):
        validate_name(name)
    with pytest.raises(InvalidNameError):
        ModelStore(tmp_path).publish(name, make_spec(), make_files(tmp_path / "src"))
    # Nothing was created outside (or inside) the store.
    assert not (tmp_path.parent / "evil").exists()
    assert ModelStore(tmp_path).models() == []


@pytest.mark.parametrize("name", ["xalign-e5-small", "E5.small_v2", "a", "a" * MAX_NAME_LENGTH])
def test_safe_names_pass(name: str) -> None:
    assert validate_name(name) == name


def test_refs_parse_versions_and_aliases() -> None:
    assert parse_ref("m").version is None
    assert parse_ref("m:3").version == 3
    assert parse_ref("m@staging").alias == "staging"
    assert str(parse_ref("m@staging")) == "m@staging"
    for bad in ("m:0", "m:x", "m@", "../m:1"):
        with pytest.raises(InvalidNameError):
            parse_ref(bad)


def test_manifest_round_trips_through_the_store(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    written = store.publish("m", make_spec(), make_files(tmp_path / "src"))
    read = store.manifest(parse_ref("m:1"))
    assert read == written
    assert read.schema_version == SCHEMA_VERSION == 2
    assert set(read.files) == {"model.onnx", "tokenizer.json"}
    assert read.files["model.onnx"].bytes == len(b"onnx-bytes")


def _store_with_edited_manifest(root: Path, edit: dict[str, object], drop: str | None = None) -> ModelStore:
    """A store holding ``m:1`` whose manifest.json had ``edit`` applied (and the key ``drop`` removed)."""
    store = ModelStore(root)
    store.publish("m", make_spec(), make_files(root / "src"))
    path = root / "m" / "1" / "manifest.json"
    data = json.loads(path.read_text())
    data.update(edit)
    if drop is not None:
        del data[drop]
    path.write_text(json.dumps(data))
    return store


def test_a_version_1_manifest_still_reads(tmp_path: Path) -> None:
    # Stores published before text_prefixes existed keep loading: the field defaults to empty.
    store = _store_with_edited_manifest(tmp_path, {"schema_version": 1}, drop="text_prefixes")
    read = store.load(parse_ref("m")).manifest
    assert (read.schema_version, read.text_prefixes) == (1, {})


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    store = _store_with_edited_manifest(tmp_path, {"schema_version": 3, "a_field_from_the_future": True})
    with pytest.raises(SchemaVersionError, match="schema_version 3 is newer"):
        store.load(parse_ref("m"))


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"schema_version": 1, "name": "m"}'])
def test_invalid_manifests_are_refused(raw: str) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(raw, "somewhere/manifest.json")


def test_unknown_fields_are_refused() -> None:
    good = make_spec().model_dump()
    good["embeding_dim"] = 3  # a typo must not pass silently
    with pytest.raises(ValueError, match="embeding_dim"):
        type(make_spec()).model_validate(good)
