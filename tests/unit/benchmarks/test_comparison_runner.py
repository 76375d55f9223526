"""The comparison runner's plan: what a finished run, a finished evaluation or a half-done run leave to do."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from benchmarks.alignment.comparison.run import (
    ABLATIONS,
    METHODS,
    SEEDS,
    Settings,
    Task,
    eval_command,
    execute,
    frozen_layers,
    main,
    plan,
    publish,
    recipe_steps,
    train_command,
)


def _settings(tmp_path: Path, python: str = "python") -> Settings:
    return Settings(runs=tmp_path / "runs", results=tmp_path / "results", data=tmp_path / "data",
                    cache=tmp_path / "cache", python=python)  # fmt: skip


def test_fresh_plan_is_base_then_seed_major_train_and_eval(tmp_path: Path) -> None:
    tasks = plan(_settings(tmp_path))
    assert len(tasks) == 1 + 2 * len(METHODS) * len(SEEDS)
    assert tasks[0] == Task("eval", "base")
    assert [(t.kind, t.run) for t in tasks[1:5]] == [
        ("train", "en_x-s1"), ("eval", "en_x-s1"), ("train", "multiway-s1"), ("eval", "multiway-s1"),
    ]  # fmt: skip
    assert tasks[-1] == Task("eval", "multiway_align_mlm-s3", "multiway_align_mlm", 3)


def test_an_ablation_runs_only_when_named_with_its_recipe_and_seed(tmp_path: Path) -> None:
    assert not any("en_x_hard" in t.run for t in plan(_settings(tmp_path)))
    (tmp_path / "results" / "base").mkdir(parents=True)
    (tmp_path / "results" / "base" / "eval.json").write_text("{}", encoding="utf-8")
    settings = Settings(**{**vars(_settings(tmp_path)), "methods": ("en_x_hard",), "seeds": (1,)})
    assert plan(settings) == [
        Task("train", "en_x_hard-s1", "en_x_hard", 1),
        Task("eval", "en_x_hard-s1", "en_x_hard", 1),
    ]
    assert recipe_steps("en_x_hard") == recipe_steps(ABLATIONS["en_x_hard"])  # the same schedule as its method


def test_finished_work_is_skipped_and_unfinished_training_resumes(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    runs = settings.runs
    (runs / "base").mkdir(parents=True)
    (runs / "base" / "eval.json").write_text("{}", encoding="utf-8")
    (runs / "en_x-s1" / f"step-{recipe_steps('en_x'):06d}").mkdir(parents=True)  # trained, not evaluated
    (runs / "dap-s1" / "step-000025").mkdir(parents=True)  # half trained
    (runs / "multiway-s1" / f"step-{recipe_steps('multiway'):06d}").mkdir(parents=True)
    (runs / "multiway-s1" / "eval.json").write_text("{}", encoding="utf-8")
    (runs / "multiway-s1" / "eval.partial.json").write_text("{", encoding="utf-8")  # a killed evaluation's
    names = [(t.kind, t.run) for t in plan(settings)]
    assert names[:3] == [("eval", "en_x-s1"), ("train", "dap-s1"), ("eval", "dap-s1")]
    assert names[3] == ("train", "multiway_align_mlm-s1")
    assert not any(run in {"base", "multiway-s1"} for _, run in names)


def test_a_published_run_is_done_on_a_new_machine(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    (settings.runs / "en_x-s1" / "step-000025").mkdir(parents=True)  # a previous session's leftovers
    (settings.runs / "en_x-s1" / "eval.json").write_text("{}", encoding="utf-8")
    (settings.runs / "en_x-s1" / "metrics.jsonl").write_text('{"step": 1}\n', encoding="utf-8")
    publish(settings, "en_x-s1")
    assert (settings.results / "en_x-s1" / "metrics.jsonl").is_file()
    assert not any(t.run == "en_x-s1" for t in plan(settings))
    assert plan(settings)[1] == Task("train", "multiway-s1", "multiway", 1)


def test_train_command_resumes_with_the_seed_and_own_output(tmp_path: Path) -> None:
    command = train_command(_settings(tmp_path), Task("train", "dap-s2", "dap", 2))
    assert command[-6:] == ["--seed", "2", "--output", str(tmp_path / "runs" / "dap-s2"), "--resume", "--no-progress"]
    assert command[4].endswith("benchmarks/alignment/comparison/dap.toml")


def _fake_python(tmp_path: Path, code: int) -> str:
    """A stand-in for the interpreter: writes a JSON object to the path after --json, then exits with ``code``."""
    script = tmp_path / "fake_python"
    script.write_text(
        '#!/bin/sh\nwhile [ "$#" -gt 0 ]; do if [ "$1" = --json ]; then echo "{}" > "$2"; fi; shift; done\n'
        f"exit {code}\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return str(script)


def test_an_evaluation_appears_only_when_complete(tmp_path: Path) -> None:
    ok = _settings(tmp_path, _fake_python(tmp_path, 0))
    assert plan(ok)[0] == Task("eval", "base")
    execute(ok, Task("eval", "base"))
    assert (ok.runs / "base" / "eval.json").read_text(encoding="utf-8") == "{}\n"
    assert not (ok.runs / "base" / "eval.partial.json").exists()
    # Published for the next session's machine, with what it cost; from then on the base is done.
    assert (ok.results / "base" / "eval.json").read_text(encoding="utf-8") == "{}\n"
    timing = json.loads((ok.results / "base" / "timing.json").read_text(encoding="utf-8"))
    assert set(timing) == {"eval"} and timing["eval"]["wall_s"] >= 0 and timing["eval"]["cpu_s"] >= 0
    assert plan(ok)[0] != Task("eval", "base")
    log = (ok.runs / "base" / "eval.log").read_text(encoding="utf-8")
    assert "--xnli-split test" in log and "--frozen-cache" not in log
    failing = _settings(tmp_path / "f", _fake_python(tmp_path, 3))
    with pytest.raises(subprocess.CalledProcessError):
        execute(failing, Task("eval", "en_x-s1", "en_x", 1))
    assert not (failing.runs / "en_x-s1" / "eval.json").exists()
    assert not (failing.results / "en_x-s1").exists()


def test_dry_run_lists_what_is_left(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Its own results folder: the repository's holds the runs published so far, which are done.
    folders = ["--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results"), "--data", str(tmp_path)]
    assert main(["--dry-run", *folders]) == 0
    assert "25 task(s) left: eval base, train en_x-s1, eval en_x-s1" in capsys.readouterr().out


def test_only_runs_of_a_frozen_bottom_read_the_evaluation_cache(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    top_only = eval_command(settings, Task("eval", "dap-s2", "dap", 2), tmp_path / "m", tmp_path / "e.json")
    assert " ".join(top_only).endswith(f"--frozen-cache {tmp_path / 'cache' / 'eval-frozen'} --frozen-layers 10")
    # ALIGN-MLM trains the whole encoder: its bottom is its own, nothing to share.
    whole = eval_command(settings, Task("eval", "mam-s1", "multiway_align_mlm", 1), tmp_path / "m", tmp_path / "e")
    assert "--frozen-cache" not in whole
    assert [frozen_layers(m) for m in (*METHODS, *ABLATIONS)] == [10, 10, 10, None, 10, 10, 8, None, 8]
