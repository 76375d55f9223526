"""Backpack mid-run checkpoints: a run stopped (or killed) and resumed ends with the uninterrupted run's weights."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from xalign.training.backpack_training.checkpoints import latest_state, list_states
from xalign.training.backpack_training.loop import RunControl, train_backpack
from xalign.training.backpack_training.recipe import recipe_from_mapping
from xalign.training.cli import main

TOML = """name = "tiny_lm"
steps = 10
batch_size = 8
lr = 1e-2
max_len = 24
warmup_steps = 2
log_every = 3
save_every = 4

[model]  # dropout on: the resumed run must also restore the random state
n_embd = 16
n_senses = 4
n_layer = 1
n_head = 2
max_positions = 32
dropout = 0.1

[tokenizer]
vocab_size = 300
[[tokenizer.texts]]
kind = "multi30k"
path = "multi30k"
split = "train"
lang = "en"

[[texts]]
kind = "multi30k"
path = "multi30k"
split = "train"
lang = "en"
"""


def raw(data_root: Path, output: Path, **changes: Any) -> dict[str, Any]:
    return {**tomllib.loads(TOML), "output": str(output), "data_root": str(data_root), **changes}


def losses(output: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in map(json.loads, (output / "metrics.jsonl").read_text().splitlines())]


def test_a_stopped_and_resumed_run_ends_where_the_uninterrupted_one_does(data_root: Path, tmp_path: Path) -> None:
    whole = train_backpack(recipe_from_mapping(raw(data_root, tmp_path / "whole"), tmp_path), progress=False)
    assert [step for step, _ in list_states(tmp_path / "whole")] == [8]  # keep_checkpoints 1
    recipe = recipe_from_mapping(raw(data_root, tmp_path / "split"), tmp_path)
    # Step 6 is between two saves: stopping saves too.
    stopped = train_backpack(recipe, progress=False, control=RunControl(stop_after=6))
    assert stopped.step == 6 and stopped.checkpoint == latest_state(tmp_path / "split")
    assert not (tmp_path / "split" / "final").exists()
    (tmp_path / "split" / "checkpoints" / ".step-000009-unfinished").mkdir()  # a write cut short is ignored
    resumed = train_backpack(recipe, progress=False, control=RunControl(resume=True))
    assert resumed.step == 10 and resumed.checkpoint == tmp_path / "split" / "final"
    a, b = (
        load_file(str(whole.checkpoint / "model.safetensors")),
        load_file(str(resumed.checkpoint / "model.safetensors")),
    )
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=0, atol=1e-7, msg=key)
    split, uninterrupted = losses(tmp_path / "split"), losses(tmp_path / "whole")
    assert [step for step, _ in split] == [step for step, _ in uninterrupted] == [3, 6, 9, 10]
    assert [loss for _, loss in split] == pytest.approx([loss for _, loss in uninterrupted], abs=1e-6)


def test_a_resumed_run_refuses_a_changed_recipe_and_a_fresh_run_clears_old_checkpoints(
    data_root: Path, tmp_path: Path
) -> None:
    recipe = recipe_from_mapping(raw(data_root, tmp_path / "run"), tmp_path)
    train_backpack(recipe, progress=False, control=RunControl(stop_after=4))
    with pytest.raises(ValueError, match="cannot resume: the recipe changed lr"):
        changed = recipe_from_mapping(raw(data_root, tmp_path / "run", lr=5e-3), tmp_path)
        train_backpack(changed, control=RunControl(resume=True))
    train_backpack(recipe_from_mapping(raw(data_root, tmp_path / "run", save_every=0), tmp_path), progress=False)
    assert list_states(tmp_path / "run") == []


def test_the_cli_resumes(data_root: Path, tmp_path: Path) -> None:
    recipe = recipe_from_mapping(raw(data_root, tmp_path / "cli"), tmp_path)
    train_backpack(recipe, progress=False, control=RunControl(stop_after=4))
    path = tmp_path / "r.toml"
    path.write_text(f'output = "cli"\ndata_root = "{data_root}"\n{TOML}', encoding="utf-8")
    assert main(["backpack", str(path), "--resume", "--no-progress"]) == 0
    assert [step for step, _ in losses(tmp_path / "cli")] == [3, 6, 9, 10]
    assert (tmp_path / "cli" / "final" / "model.safetensors").is_file()
