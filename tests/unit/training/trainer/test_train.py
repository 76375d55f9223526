"""Training runs on the tiny BERT: every objective mix, falling loss, exact resume, frozen embeddings, outputs."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from resume_checks import checkpoint_weights, interrupted_equals_uninterrupted, train_records
from trainer_recipes import DATA, MIXES, TATOEBA_MINI, make_recipe

from xalign.training.evaluate.encoder import TransformersEncoder
from xalign.training.trainer.checkpoint import CHECKPOINT_MANIFEST, TRAINING_STATE, list_checkpoints, read_manifest
from xalign.training.trainer.loop import train
from xalign.training.trainer.metrics_log import LOSS_CURVE_FILE, METRICS_FILE, read_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_each_objective_mix_trains_six_steps(mix: str, mlm_model_dir: Path, tmp_path: Path) -> None:
    recipe = make_recipe(mlm_model_dir, tmp_path / "run", mix)
    result = train(recipe, progress=False)
    assert result.step == 6
    records = train_records(recipe.output)
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    for record in records:
        assert math.isfinite(record["loss"]) and record["examples_per_s"] > 0
        assert {o["name"] for o in MIXES[mix]} <= set(record["losses"])
    # The weighted total is what the objectives say it is.
    weights = {o["name"]: o.get("weight", 1.0) for o in MIXES[mix]}
    last = records[-1]
    assert last["loss"] == pytest.approx(sum(w * last["losses"][n] for n, w in weights.items()), rel=1e-5)
    assert result.checkpoint == recipe.output / "step-000006"
    before, after = checkpoint_weights(mlm_model_dir), checkpoint_weights(result.checkpoint)
    assert set(before) == set(after)  # the exported folder holds the encoder only, no training heads
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_loss_falls_over_thirty_steps(mlm_model_dir: Path, tmp_path: Path) -> None:
    # 8 fixed rows, one batch of all of them: the only thing that changes is the model.
    data = [{"kind": "multi30k", "path": "multi30k", "split": "train", "langs": ["en", "de"], "max_rows": 8}]
    recipe = make_recipe(
        mlm_model_dir,
        tmp_path / "run",
        "en_x",
        data=data,
        batch_size=8,
        steps=30,
        lr=3e-3,
        warmup_steps=3,
        max_seq_length=24,
    )
    train(recipe, progress=False)
    losses = [r["loss"] for r in train_records(recipe.output)]
    assert len(losses) == 30
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.5 * first, (first, last)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(mlm_model_dir: Path, tmp_path: Path) -> None:
    # DAP mix (a head in the training state), dropout on, gradient accumulation, cosine decay, and epoch
    # boundaries crossed: 10 en-de pairs hold 2 micro-batches of 4, so every step starts a new epoch.
    data = [{"kind": "multi30k", "path": "multi30k", "split": "train", "langs": ["en", "de"], "max_rows": 10}]
    recipe = make_recipe(
        mlm_model_dir, tmp_path / "whole", "dap", data=data, grad_accum=2, decay="cosine", warmup_steps=2, steps=4
    )
    interrupted_equals_uninterrupted(recipe, tmp_path)


def test_resume_with_mlm_dictionary_and_multiway(mlm_model_dir: Path, tmp_path: Path) -> None:
    recipe = make_recipe(mlm_model_dir, tmp_path / "whole", "multiway_align_mlm", steps=4)
    interrupted_equals_uninterrupted(recipe, tmp_path)


def test_frozen_embeddings_stay_bit_identical(mlm_model_dir: Path, tmp_path: Path) -> None:
    recipe = make_recipe(mlm_model_dir, tmp_path / "run", "dap", freeze_embeddings=True, steps=3)
    result = train(recipe, progress=False)
    assert result.checkpoint is not None
    before, after = checkpoint_weights(mlm_model_dir), checkpoint_weights(result.checkpoint)
    embeddings = [k for k in before if k.startswith("embeddings.")]
    assert len(embeddings) == 5  # word, position, token type, LayerNorm weight and bias
    for key in embeddings:
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["encoder.layer.0.attention.self.query.weight"],
                           after["encoder.layer.0.attention.self.query.weight"])  # fmt: skip


def test_checkpoint_folder_manifest_and_outputs(mlm_model_dir: Path, tmp_path: Path) -> None:
    dev = {"tatoeba_dir": str(TATOEBA_MINI), "langs": ["deu"], "max_lines": 20}
    recipe = make_recipe(mlm_model_dir, tmp_path / "run", "en_x", dev=dev, eval_every=3, save_every=3)
    result = train(recipe, progress=False, recipe_file="tiny.toml")
    assert [s for s, _ in list_checkpoints(recipe.output)] == [3, 6]
    folder = result.checkpoint
    assert folder is not None
    for name in ("model.safetensors", "config.json", "tokenizer.json", TRAINING_STATE, CHECKPOINT_MANIFEST):
        assert (folder / name).is_file(), name
    manifest = read_manifest(folder)
    assert (manifest.step, manifest.steps, manifest.recipe_file) == (6, 6, "tiny.toml")
    assert manifest.recipe["objectives"] == [{"name": "translation_ranking", "weight": 1.0, "params": {}}]
    files = {f.path: f for corpus in manifest.data for f in corpus.files}
    assert set(files) == {f"multi30k/train.{lang}" for lang in ("en", "de", "fr", "cs")}
    for path, entry in files.items():
        raw = (DATA / path).read_bytes()
        assert entry.sha256 == hashlib.sha256(raw).hexdigest()
        assert entry.lines == raw.count(b"\n") == 48
    # Outside the data root, so recorded with absolute paths.
    dev_files = [Path(f.path) for f in manifest.dev_data[0].files]
    assert dev_files == [TATOEBA_MINI / "tatoeba.deu-eng.deu", TATOEBA_MINI / "tatoeba.deu-eng.eng"]
    assert manifest.metrics["train"]["step"] == 6 and "translation_ranking" in manifest.metrics["train"]["losses"]
    assert manifest.metrics["dev"]["step"] == 6
    assert 0.0 <= manifest.metrics["dev"]["tatoeba"]["deu-eng"] <= 100.0
    assert set(manifest.versions) == {"python", "torch", "transformers"}
    source = manifest.source_info()  # what export puts into the store manifest
    assert source.steps == 6 and len(source.data_files) == 4 and source.recipe == "tiny.toml"
    records = read_metrics(recipe.output / METRICS_FILE)
    assert [r["step"] for r in records if "dev" in r] == [3, 6]
    assert (recipe.output / LOSS_CURVE_FILE).read_bytes()[:8] == PNG_MAGIC
    # The checkpoint is a plain transformers folder: the evaluation encoder loads it like any base.
    vectors = TransformersEncoder(folder, text_prefix="query: ").encode(["a dog runs", "ein hund rennt"])
    assert vectors.shape == (2, 32)


def test_keep_checkpoints_prunes_older_ones(mlm_model_dir: Path, tmp_path: Path) -> None:
    recipe = make_recipe(mlm_model_dir, tmp_path / "run", "en_x", save_every=1, keep_checkpoints=2, steps=4)
    train(recipe, progress=False)
    assert [s for s, _ in list_checkpoints(recipe.output)] == [3, 4]


def test_refuses_to_overwrite_a_run_and_to_resume_a_changed_one(mlm_model_dir: Path, tmp_path: Path) -> None:
    recipe = make_recipe(mlm_model_dir, tmp_path / "run", "en_x", steps=2)
    train(recipe, progress=False)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train(recipe, progress=False)
    changed = make_recipe(mlm_model_dir, tmp_path / "run", "en_x", steps=4, lr=5e-4)
    with pytest.raises(ValueError, match="recipe changed lr"):
        train(changed, resume=True, progress=False)


def test_resume_refuses_changed_data(mlm_model_dir: Path, tmp_path: Path) -> None:
    data_root = tmp_path / "data"
    shutil.copytree(DATA, data_root)
    recipe = make_recipe(mlm_model_dir, tmp_path / "run", "en_x", steps=2, data_root=str(data_root))
    train(recipe, progress=False)
    german = data_root / "multi30k" / "train.de"
    german.write_text(german.read_text(encoding="utf-8").replace("Männer", "Leute", 1), encoding="utf-8")
    longer = make_recipe(mlm_model_dir, tmp_path / "run", "en_x", steps=4, data_root=str(data_root))
    with pytest.raises(ValueError, match=r"data files differ.*multi30k/train\.de"):
        train(longer, resume=True, progress=False)


def test_resume_past_the_end_trains_nothing(mlm_model_dir: Path, tmp_path: Path) -> None:
    recipe = make_recipe(mlm_model_dir, tmp_path / "run", "en_x", steps=2)
    first = train(recipe, progress=False)
    again = train(recipe, resume=True, progress=False)
    assert again.step == 2 and again.checkpoint == first.checkpoint
    assert len(train_records(recipe.output)) == 2
    assert json.loads((recipe.output / METRICS_FILE).read_text().splitlines()[-1])["step"] == 2
