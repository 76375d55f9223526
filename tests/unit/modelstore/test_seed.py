"""Seeding an empty store from another (the deployment's bootstrap): versions, files, aliases, and never twice."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from store_specs import make_files, make_spec

from xalign.modelstore import ModelStore
from xalign.modelstore.cli import main
from xalign.modelstore.errors import CorruptFileError
from xalign.modelstore.refs import ModelRef
from xalign.modelstore.seed import seed_store


@pytest.fixture
def source(tmp_path: Path) -> ModelStore:
    """Model ``m`` with versions 1-3 (version 2 removed: numbers need not be contiguous), production at 3."""
    store = ModelStore(tmp_path / "image-store")
    for i in range(3):
        store.publish("m", make_spec(fingerprint=f"fp{i}"), make_files(tmp_path / f"src{i}", b"%d" % i))
    store.publish("other", make_spec(), make_files(tmp_path / "src-other", b"other"))
    shutil.rmtree(store.root / "m" / "2")
    store.promote("m", 3)
    store.promote("m", 1, "staging")
    return store


def test_seeds_every_version_with_its_files_and_aliases(source: ModelStore, tmp_path: Path) -> None:
    destination = ModelStore(tmp_path / "volume")
    report = seed_store(destination, source)
    assert report.skipped is None
    assert report.published == [("m", 1, 1), ("m", 3, 2), ("other", 1, 1)]
    assert destination.aliases("m") == {"production": 2, "staging": 1}
    seeded = destination.load(ModelRef("m"))  # production, every sha256 checked
    assert seeded.file("model.onnx").read_bytes() == b"2"
    assert seeded.manifest.source.fingerprint == "fp2"
    assert seeded.manifest.version == 2


def test_a_store_with_a_model_is_left_alone(source: ModelStore, tmp_path: Path) -> None:
    destination = ModelStore(tmp_path / "volume")
    destination.publish("mine", make_spec(), make_files(tmp_path / "mine", b"mine"))
    report = seed_store(destination, source)
    assert report.skipped is not None and "mine" in report.skipped
    assert destination.models() == ["mine"]
    again = seed_store(ModelStore(source.root), source)
    assert again.published == []


def test_a_corrupt_source_file_stops_the_seed_before_anything_lands(source: ModelStore, tmp_path: Path) -> None:
    (source.root / "m" / "3" / "model.onnx").write_bytes(b"tampered")
    destination = ModelStore(tmp_path / "volume")
    with pytest.raises(CorruptFileError):
        seed_store(destination, source)
    assert destination.models() == []  # checked before anything was copied: a rerun after the fix seeds it all


def test_cli_seed_then_nothing(source: ModelStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    volume = tmp_path / "volume"
    assert main(["--store", str(volume), "seed", "--from", str(source.root)]) == 0
    out = capsys.readouterr().out
    assert f"seeded m:2 from {source.root}/m/3" in out and "m@production -> 2" in out
    assert main(["--store", str(volume), "seed", "--from", str(source.root)]) == 0
    assert "nothing seeded" in capsys.readouterr().out
