"""Deltas: extract the tensors a tiny training run changed, apply them to the base, and refuse what is wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file
from tiny_models import build_model_dir
from trainer_recipes import make_recipe, write_cli_recipe

from xalign.modelstore.integrity import sha256_file
from xalign.training.cli import main
from xalign.training.delta import (
    APPLIED_RECORD,
    DELTA_FILE,
    RECIPE_COPY,
    DeltaError,
    apply_delta,
    extract_delta,
    read_delta,
)
from xalign.training.delta_codec import Compression
from xalign.training.trainer.loop import train

EVALUATION = {"tatoeba": {"deu-eng": 12.5, "mean": 11.0}}


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def top_checkpoint(mlm_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step run of the tiny BERT that trains only its top layer (of 2)."""
    recipe = make_recipe(mlm_model_dir, tmp_path_factory.mktemp("top") / "run", "en_x", train_top_layers=1, steps=2)
    result = train(recipe, progress=False, recipe_file="top.toml")
    assert result.checkpoint is not None
    return result.checkpoint


@pytest.fixture(scope="module")
def full_checkpoint(mlm_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step run that trains everything but the pooler."""
    recipe = make_recipe(mlm_model_dir, tmp_path_factory.mktemp("full") / "run", "en_x", steps=2)
    result = train(recipe, progress=False)
    assert result.checkpoint is not None
    return result.checkpoint


def test_round_trip_rebuilds_the_trained_weights_exactly(
    top_checkpoint: Path, mlm_model_dir: Path, tmp_path: Path
) -> None:
    manifest = extract_delta(top_checkpoint, mlm_model_dir, tmp_path / "delta", evaluation=EVALUATION)
    # Only the trained layer is in the delta: 16 tensors of encoder.layer.1, nothing else.
    assert set(manifest.tensors) == set(load_file(str(tmp_path / "delta" / DELTA_FILE)))
    assert len(manifest.tensors) == 16 and all(n.startswith("encoder.layer.1.") for n in manifest.tensors)
    assert manifest.base.model_sha256 == sha256_file(mlm_model_dir / "model.safetensors")
    assert manifest.file_sha256 == sha256_file(tmp_path / "delta" / DELTA_FILE)
    assert (manifest.step, manifest.recipe_file, manifest.recipe["train_top_layers"]) == (2, "top.toml", 1)
    assert {f["path"] for f in manifest.data_files} == {f"multi30k/train.{lang}" for lang in ("en", "de", "fr", "cs")}
    assert manifest.evaluation == EVALUATION and read_delta(tmp_path / "delta") == manifest

    out = apply_delta(mlm_model_dir, tmp_path / "delta", tmp_path / "applied")
    trained, rebuilt = _weights(top_checkpoint), _weights(out)
    assert set(trained) == set(rebuilt)
    for name, tensor in trained.items():
        assert torch.equal(tensor, rebuilt[name]), name
    assert not torch.equal(
        rebuilt["encoder.layer.1.output.dense.weight"], _weights(mlm_model_dir)["encoder.layer.1.output.dense.weight"]
    )
    # A whole transformers folder: config and tokenizer from the base, loadable as is.
    assert (out / "tokenizer.json").read_bytes() == (mlm_model_dir / "tokenizer.json").read_bytes()
    assert transformers.AutoModel.from_pretrained(str(out)).config.num_hidden_layers == 2
    assert transformers.AutoTokenizer.from_pretrained(str(out)).mask_token_id == 86


def test_a_compressed_delta_is_smaller_applies_to_its_recorded_bits_and_says_what_it_lost(
    full_checkpoint: Path, mlm_model_dir: Path, tmp_path: Path
) -> None:
    exact = extract_delta(full_checkpoint, mlm_model_dir, tmp_path / "exact")
    manifest = extract_delta(full_checkpoint, mlm_model_dir, tmp_path / "delta", compression=Compression(4, 16))
    assert manifest.file_bytes < exact.file_bytes / 2 and manifest.tensors.keys() == exact.tensors.keys()
    encodings = {entry.encoding for entry in manifest.tensors.values()}
    assert encodings == {"lowrank", "residual", "rows"}
    assert manifest.tensors["embeddings.word_embeddings.weight"].encoding == "rows"
    applied = _weights(apply_delta(mlm_model_dir, tmp_path / "delta", tmp_path / "applied"))
    trained, base = _weights(full_checkpoint), _weights(mlm_model_dir)
    # What the manifest says was lost is what was lost, measured here from the files.
    lost = sum(float((applied[n] - trained[n]).double().square().sum()) for n in trained) ** 0.5
    change = sum(float((trained[n] - base[n]).double().square().sum()) for n in trained) ** 0.5
    assert manifest.compression is not None and manifest.compression["rank"] == 4
    assert manifest.compression["lost_change"] == pytest.approx(lost / change, rel=1e-6)
    assert 0 < manifest.compression["lost_change"] < 1  # lossy, but keeps most of the change
    again = _weights(apply_delta(mlm_model_dir, tmp_path / "delta", tmp_path / "again"))
    assert all(torch.equal(applied[n], again[n]) for n in applied)


def test_apply_is_idempotent_and_repairs_an_edited_output(
    top_checkpoint: Path, mlm_model_dir: Path, tmp_path: Path
) -> None:
    extract_delta(top_checkpoint, mlm_model_dir, tmp_path / "delta")
    out = apply_delta(mlm_model_dir, tmp_path / "delta", tmp_path / "applied")
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert apply_delta(mlm_model_dir, tmp_path / "delta", out) == out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not rewritten
    record = json.loads((out / APPLIED_RECORD).read_text())
    assert record["delta_file_sha256"] == sha256_file(tmp_path / "delta" / DELTA_FILE)
    save_file({"x": torch.zeros(1)}, str(out / "model.safetensors"))  # someone edits the output
    apply_delta(mlm_model_dir, tmp_path / "delta", out)
    assert set(_weights(out)) == set(_weights(top_checkpoint))


def test_a_wrong_base_is_refused_naming_both_hashes(top_checkpoint: Path, mlm_model_dir: Path, tmp_path: Path) -> None:
    extract_delta(top_checkpoint, mlm_model_dir, tmp_path / "delta")
    other = build_model_dir(tmp_path / "other", seed=1)
    expected, found = sha256_file(mlm_model_dir / "model.safetensors"), sha256_file(other / "model.safetensors")
    with pytest.raises(DeltaError, match="wrong base") as error:
        apply_delta(other, tmp_path / "delta", tmp_path / "applied")
    assert expected in str(error.value) and found in str(error.value)
    assert not (tmp_path / "applied").exists()


def test_a_corrupted_delta_file_is_refused(top_checkpoint: Path, mlm_model_dir: Path, tmp_path: Path) -> None:
    extract_delta(top_checkpoint, mlm_model_dir, tmp_path / "delta")
    path = tmp_path / "delta" / DELTA_FILE
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01  # one bit of the last tensor's data
    path.write_bytes(bytes(raw))
    with pytest.raises(DeltaError, match="corrupted"):
        apply_delta(mlm_model_dir, tmp_path / "delta", tmp_path / "applied")
    assert not (tmp_path / "applied").exists()


def test_the_size_cap_names_size_and_tensors(full_checkpoint: Path, mlm_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DeltaError, match=r"over the 0\.0 MB limit: \d+ stored tensors in embeddings") as error:
        extract_delta(full_checkpoint, mlm_model_dir, tmp_path / "delta", max_bytes=10_000)
    assert "encoder.layer.0" in str(error.value) and "encoder.layer.1" in str(error.value)
    assert not (tmp_path / "delta").exists() and list(tmp_path.iterdir()) == []  # no staging folder left
    # A full run's delta holds the embeddings and both layers, never the frozen pooler.
    manifest = extract_delta(full_checkpoint, mlm_model_dir, tmp_path / "delta")
    assert any(n.startswith("embeddings.") for n in manifest.tensors)
    assert not any(n.startswith("pooler.") for n in manifest.tensors)


def test_changed_tensors_the_recipe_froze_are_refused(
    top_checkpoint: Path, mlm_model_dir: Path, tmp_path: Path
) -> None:
    edited = tmp_path / "edited"
    shutil.copytree(top_checkpoint, edited)
    weights = _weights(edited)
    weights["encoder.layer.0.output.dense.bias"] += 1.0  # a layer train_top_layers = 1 keeps frozen
    save_file(weights, str(edited / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(DeltaError, match=r"recipe keeps frozen changed: encoder\.layer\.0\.output\.dense\.bias"):
        extract_delta(edited, mlm_model_dir, tmp_path / "delta")


def test_a_checkpoint_with_another_config_or_a_malformed_manifest_is_refused(
    top_checkpoint: Path, mlm_model_dir: Path, tmp_path: Path
) -> None:
    edited = tmp_path / "edited"
    shutil.copytree(top_checkpoint, edited)
    config = json.loads((edited / "config.json").read_text())
    config["layer_norm_eps"] = 1e-5  # the applied model would get the base's 1e-12 and compute differently
    (edited / "config.json").write_text(json.dumps(config))
    with pytest.raises(DeltaError, match="differs from the base's in layer_norm_eps"):
        extract_delta(edited, mlm_model_dir, tmp_path / "delta")
    extract_delta(top_checkpoint, mlm_model_dir, tmp_path / "delta")
    manifest = json.loads((tmp_path / "delta" / "delta.json").read_text())
    del manifest["base"]["model_sha256"]
    (tmp_path / "delta" / "delta.json").write_text(json.dumps(manifest))
    with pytest.raises(DeltaError, match="malformed"):
        apply_delta(mlm_model_dir, tmp_path / "delta", tmp_path / "applied")


def test_extract_refuses_to_replace_a_folder_that_is_not_a_delta(
    top_checkpoint: Path, mlm_model_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me\n")
    with pytest.raises(DeltaError, match="holds other files"):
        extract_delta(top_checkpoint, mlm_model_dir, tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").is_file()
    extract_delta(top_checkpoint, mlm_model_dir, tmp_path / "delta")
    extract_delta(top_checkpoint, mlm_model_dir, tmp_path / "delta")  # a delta folder is replaced whole


def test_cli_extract_and_apply(mlm_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = write_cli_recipe(tmp_path, mlm_model_dir, "train_top_layers = 1\n")
    assert main(["train", str(recipe), "--steps", "1", "--no-progress"]) == 0
    checkpoint = tmp_path / "run" / "step-000001"
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(json.dumps(EVALUATION))
    delta = tmp_path / "delta"
    argv = ["delta", "extract", str(checkpoint), "--base", str(mlm_model_dir), "--out", str(delta)]
    assert main([*argv, "--evaluation", str(evaluation), "--recipe", str(recipe)]) == 0
    assert "16 tensors" in capsys.readouterr().out
    assert (delta / RECIPE_COPY).read_text() == recipe.read_text()
    assert read_delta(delta).recipe_sha256 == sha256_file(recipe)
    assert main(["delta", "apply", str(delta), "--base", str(mlm_model_dir), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out")
    small = ["delta", "extract", str(checkpoint), "--base", str(mlm_model_dir), "--out", str(tmp_path / "small")]
    assert main([*small, "--rank", "2", "--embedding-rows", "4"]) == 0
    compression = read_delta(tmp_path / "small").compression
    assert compression is not None and (compression["rank"], compression["embedding_rows"]) == (2, 4)
    assert 0 < compression["lost_change"] < 1
    # A recipe file that did not train this checkpoint, and a wrong base: one line each, exit 2.
    other = write_cli_recipe(tmp_path / "run", mlm_model_dir, "train_top_layers = 2\n")
    assert main([*argv, "--recipe", str(other)]) == 2
    assert "not the recipe of this checkpoint (train_top_layers differ)" in capsys.readouterr().err
    wrong = build_model_dir(tmp_path / "wrong", seed=3)
    capsys.readouterr()
    assert main(["delta", "apply", str(delta), "--base", str(wrong), "--out", str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xalign-train delta: ") and "wrong base" in err and err.count("\n") == 1
