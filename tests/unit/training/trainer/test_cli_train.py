"""``xalign-train train``: a recipe file run from the command line, resumed, and its usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from trainer_recipes import write_cli_recipe

from xalign.training.cli import main
from xalign.training.trainer.checkpoint import list_checkpoints, read_manifest


def test_train_stop_and_resume_from_the_command_line(
    mlm_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_cli_recipe(tmp_path, mlm_model_dir)
    assert main(["train", str(recipe), "--stop-after", "2", "--no-progress"]) == 0
    assert "step 2: " in capsys.readouterr().out
    assert main(["train", str(recipe), "--resume", "--no-progress"]) == 0
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [2, 4]
    manifest = read_manifest(tmp_path / "run" / "step-000004")
    assert manifest.recipe_file == "tiny.toml" and manifest.step == 4
    other = tmp_path / "other"
    assert main(["train", str(recipe), "--output", str(other), "--steps", "1", "--seed", "5", "--no-progress"]) == 0
    assert [s for s, _ in list_checkpoints(other)] == [1]
    assert read_manifest(other / "step-000001").recipe["seed"] == 5


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ((["--steps", "0"], ""), "--steps must be at least 1"),
        ((["--stop-after", "0"], ""), "--stop-after must be at least 1"),
        ((["--seed", "-1"], ""), "--seed must not be negative"),
        (([], "lrr = 1\n"), "unknown key(s) lrr"),
        (([], "warmup_steps = 9\n"), "warmup_steps: must be in [0, steps=4]"),
    ],
)
def test_usage_and_recipe_errors_exit_2_with_one_line(
    case: tuple[list[str], str], message: str, mlm_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv_tail, extra = case
    recipe = write_cli_recipe(tmp_path, mlm_model_dir, extra)
    assert main(["train", str(recipe), *argv_tail]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xalign-train train: ") and message in err and err.count("\n") == 1


def test_a_missing_recipe_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(tmp_path / "none.toml")]) == 2
    assert "none.toml" in capsys.readouterr().err
