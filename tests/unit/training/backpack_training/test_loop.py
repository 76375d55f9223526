"""The Backpack training loop on tiny models: falling loss, checkpoint + manifest, SENSIA from init, the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

from xalign.training.backpack_training.batches import EOS_ID, batch_indices, encode_texts, pad_batch
from xalign.training.backpack_training.loop import train_backpack
from xalign.training.backpack_training.manifest import read_manifest
from xalign.training.backpack_training.recipe import recipe_from_mapping
from xalign.training.cli import main
from xalign.training.data.corpus import sha256_of
from xalign.training.models.backpack import load_backpack

TEXTS = [{"kind": "multi30k", "path": "multi30k", "split": "train", "lang": "en"}]
TOKENIZER_TEXTS = [*TEXTS, {"kind": "multi30k", "path": "multi30k", "split": "train", "lang": "de"}]
MODEL = {"n_embd": 16, "n_senses": 4, "n_layer": 1, "n_head": 2, "max_positions": 32, "dropout": 0.0}


def lm_raw(data_root: Path, output: Path, steps: int = 40) -> dict[str, Any]:
    return {
        "name": "tiny_lm", "output": str(output), "data_root": str(data_root), "steps": steps, "batch_size": 8,
        "lr": 1e-2, "max_len": 24, "warmup_steps": 2, "log_every": 10, "model": MODEL,
        "tokenizer": {"vocab_size": 300, "texts": TOKENIZER_TEXTS}, "texts": TEXTS,
    }  # fmt: skip


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_root = Path(__file__).resolve().parents[3] / "data" / "backpack_training"
    output = tmp_path_factory.mktemp("lm")
    recipe_file = output / "tiny_lm.toml"
    recipe_file.write_text("# the recipe text is recorded in the manifest\n", encoding="utf-8")
    result = train_backpack(recipe_from_mapping(lm_raw(data_root, output), output), False, recipe_file)
    assert result.checkpoint == output / "final"
    return output


def test_the_loss_falls_and_metrics_are_logged(lm_run: Path) -> None:
    records = [eval(line) for line in (lm_run / "metrics.jsonl").read_text().splitlines()]  # noqa: S307
    assert [r["step"] for r in records] == [10, 20, 30, 40]
    assert records[-1]["loss"] < records[0]["loss"] - 0.5
    assert set(records[0]["losses"]) == {"lm"}
    assert (lm_run / "loss_curve.png").stat().st_size > 1000


def test_the_checkpoint_loads_and_its_manifest_records_the_run(lm_run: Path, data_root: Path) -> None:
    model = load_backpack(lm_run / "final")
    assert model.config.n_senses == 4
    manifest = read_manifest(lm_run / "final")
    assert (manifest.name, manifest.step, manifest.steps) == ("tiny_lm", 40, 40)
    assert manifest.recipe_text is not None
    assert manifest.recipe_text.startswith("# the recipe text")
    assert manifest.recipe["lr"] == 1e-2
    assert manifest.init is None
    assert manifest.metrics["step"] == 40
    files = {f.path: f.sha256 for corpus in manifest.data for f in corpus.files}
    assert files["multi30k/train.en"] == sha256_of(data_root / "multi30k" / "train.en")
    assert "multi30k/train.de" in files  # the tokenizer's texts are recorded too
    assert manifest.tokenizer_sha256 == sha256_of(lm_run / "final" / "tokenizer.json")
    assert "torch" in manifest.versions


def test_a_sensia_run_starts_from_the_init_checkpoint(lm_run: Path, data_root: Path, tmp_path: Path) -> None:
    parallel = [{"kind": "multi30k", "path": "multi30k", "split": "train", "src": "en", "tgt": "de", "stop": 32}]
    raw = {"name": "tiny_sensia", "output": str(tmp_path), "data_root": str(data_root), "steps": 4, "batch_size": 8,
           "lr": 1e-3, "max_len": 24, "log_every": 2, "init": str(lm_run / "final"), "parallel": parallel,
           "objective": {"source_lm": 0.5}}  # fmt: skip
    result = train_backpack(recipe_from_mapping(raw, tmp_path), progress=False)
    assert set(result.metrics["losses"]) == {"target_lm", "source_lm", "sense_align", "context_align"}
    manifest = read_manifest(result.checkpoint)
    assert manifest.init is not None
    assert manifest.init["weights_sha256"] == sha256_of(lm_run / "final" / "model.safetensors")
    assert manifest.tokenizer_sha256 == sha256_of(lm_run / "final" / "tokenizer.json")
    before, after = load_backpack(lm_run / "final"), load_backpack(result.checkpoint)
    assert not torch.equal(before.embed.weight, after.embed.weight)


def test_the_cli_subcommand_trains_a_recipe_file(data_root: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        f'name = "cli"\noutput = "out"\ndata_root = "{data_root}"\nsteps = 50\nbatch_size = 4\nlr = 1e-3\n'
        'max_len = 16\ntokenizer_from = "tok.json"\n'
        "[model]\nn_embd = 16\nn_senses = 4\nn_layer = 1\nn_head = 2\nmax_positions = 16\n"
        '[[texts]]\nkind = "multi30k"\npath = "multi30k"\nsplit = "val"\nlang = "de"\n',
        encoding="utf-8",
    )
    from xalign.training.models.backpack_tokenizer import train_tokenizer  # noqa: PLC0415

    train_tokenizer(["ein Hund läuft", "zwei Hunde"] * 5, vocab_size=270).save(str(tmp_path / "tok.json"))
    assert main(["backpack", str(recipe), "--steps", "2", "--no-progress"]) == 0
    assert read_manifest(tmp_path / "out" / "final").step == 2
    assert main(["backpack", str(recipe), "--steps", "0"]) == 2


def test_encoding_ends_with_eos_and_respects_max_len(tokenizer: Tokenizer) -> None:
    ids = encode_texts(tokenizer, ["A man in an orange hat starring at something.", "a"], max_len=6)
    assert all(seq[0] == 2 and seq[-1] == EOS_ID and len(seq) <= 6 for seq in ids)
    assert len(ids[0]) == 6
    batch = pad_batch(ids)
    assert batch.input_ids.shape == (2, 6)
    assert batch.attention_mask.sum(1).tolist() == [len(ids[0]), len(ids[1])]
    assert int(batch.input_ids[1, len(ids[1]) :].sum()) == 0


def test_batches_cover_each_row_once_per_epoch() -> None:
    batches = batch_indices(10, 4, seed=3)
    drawn = np.concatenate([next(batches) for _ in range(5)])  # two epochs
    assert sorted(drawn[:10].tolist()) == list(range(10))
    assert sorted(drawn[10:20].tolist()) == list(range(10))
    again = batch_indices(10, 4, seed=3)
    assert np.array_equal(next(again), drawn[:4])
