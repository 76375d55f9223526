"""The committed delta of the aligned default: small, intact, made by the recipe it names, and measured."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from xalign.modelstore.integrity import sha256_file
from xalign.training.delta import DELTA_FILE, DeltaManifest, read_delta
from xalign.training.recipes.recipe import TATOEBA_DEV_LANGS
from xalign.training.trainer.build import TRAINING_KEYS

REPO = Path(__file__).resolve().parents[4]
DELTA = REPO / "deltas" / "xalign-e5-small"
RECIPES = REPO / "training" / "recipes"
MAX_BYTES = 30 * 1024 * 1024


@pytest.fixture(scope="module")
def delta() -> DeltaManifest:
    if not (DELTA / "delta.json").is_file():
        pytest.fail("deltas/xalign-e5-small is the aligned default: it must be committed")
    return read_delta(DELTA)


def test_small_and_intact(delta: DeltaManifest) -> None:
    path = DELTA / DELTA_FILE
    assert path.stat().st_size == delta.file_bytes <= MAX_BYTES
    assert sha256_file(path) == delta.file_sha256
    layers = {name.split(".")[2] for name in delta.tensors if name.startswith("encoder.layer.")}
    assert layers == {str(i) for i in range(12)}  # the whole encoder, as the recipe says
    assert delta.recipe["train_top_layers"] is None and not delta.recipe["freeze_embeddings"]
    assert delta.tensors["embeddings.word_embeddings.weight"].encoding == "rows"


def test_compressed_as_its_recipe_says(delta: DeltaManifest) -> None:
    # The recipe's extract command (rank 128) and what that lost: the metrics of the applied model, measured in
    # deltas/README.md, are the trained checkpoint's; the weights keep most of the change.
    assert delta.compression is not None
    assert (delta.compression["rank"], delta.compression["embedding_rows"]) == (128, 4096)
    assert "--rank 128" in (RECIPES / delta.recipe_file).read_text(encoding="utf-8")
    assert delta.compression["lost_change"] < 0.5 and delta.compression["max_abs_error"] < 1e-2


def test_made_by_the_recipe_it_names(delta: DeltaManifest) -> None:
    assert delta.recipe_file == "multiway_full.toml"
    shipped = tomllib.loads((RECIPES / delta.recipe_file).read_text(encoding="utf-8"))
    copied = tomllib.loads((DELTA / "recipe.toml").read_text(encoding="utf-8"))
    assert copied == shipped
    for key in ("batch_size", "lr", "steps", "pairing", "max_seq_length", "seed", "freeze_embeddings"):
        assert delta.recipe[key] == shipped[key], key
    assert [o["name"] for o in delta.recipe["objectives"]] == ["multiway_contrastive", "embedding_distillation"]
    assert set(TRAINING_KEYS) <= set(delta.recipe)
    assert not any("tatoeba" in f["path"] or "bucc" in f["path"] for f in delta.data_files)


def test_measured_on_every_dev_direction(delta: DeltaManifest) -> None:
    assert delta.evaluation is not None
    tatoeba = delta.evaluation["tatoeba"]
    for lang in TATOEBA_DEV_LANGS:
        assert f"{lang}-eng" in tatoeba and f"eng-{lang}" in tatoeba
    assert tatoeba["mean"] > 90.70  # the base's mean on the same evaluation (benchmarks/results)
