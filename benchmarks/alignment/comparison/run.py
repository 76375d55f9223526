"""The seeded comparison of the four alignment methods: train and evaluate every (method, seed), resumably.

    nice -n 19 .venv/bin/python -m benchmarks.alignment.comparison.run >> runs/comparison/progress.log 2>&1
    .venv/bin/python -m benchmarks.alignment.comparison.run --dry-run     # what is left to do, nothing run

The work is a fixed list of tasks (``plan``): evaluate the base, then for seed 1, 2, 3 and each method in
``METHODS``, train ``<method>.toml`` of this folder with ``--seed`` into ``runs/comparison/<method>-s<seed>/`` and
evaluate its last checkpoint. The state on disk says what is done, so the runner can be killed at any moment and
started again: a run whose last checkpoint (``step-<steps>``) exists is not trained again (an unfinished one
continues with ``--resume`` from its newest checkpoint), and an evaluation whose ``eval.json`` exists is not run
again (it is written under another name and renamed when complete). Seed-major order means that whatever is
finished when a session ends covers every method equally. Each command's output goes to ``train.log`` or
``eval.log`` beside the run; a timestamped progress line per task goes to stdout.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
METHODS = ("en_x", "multiway", "dap", "multiway_align_mlm")
SEEDS = (1, 2, 3)
BASE = "base"
EVAL_JSON = "eval.json"


@dataclass(frozen=True)
class Settings:
    """Where runs go, where the data is, and how the evaluation is capped."""

    runs: Path = REPO / "runs" / "comparison"
    data: Path = REPO.parent / "shared" / "data"
    cache: Path = REPO / ".cache" / "xalign"
    python: str = sys.executable
    bucc_max: int = 8000
    xnli_max: int = 1000


@dataclass(frozen=True)
class Task:
    """One step of the plan: ``train`` or ``eval`` of run ``run`` (``method`` and ``seed`` empty for the base)."""

    kind: str
    run: str
    method: str = ""
    seed: int = 0


def run_name(method: str, seed: int) -> str:
    """The folder name of one training run under ``runs/comparison``."""
    return f"{method}-s{seed}"


def recipe_path(method: str) -> Path:
    """The recipe of ``method`` in this folder."""
    return HERE / f"{method}.toml"


def recipe_steps(method: str) -> int:
    """The optimizer steps of ``method``'s recipe (read without loading the trainer)."""
    with recipe_path(method).open("rb") as f:
        steps: int = tomllib.load(f)["steps"]
    return steps


def final_checkpoint(settings: Settings, method: str, seed: int) -> Path:
    """The checkpoint a finished run ends with (checkpoint folders appear only when complete)."""
    return settings.runs / run_name(method, seed) / f"step-{recipe_steps(method):06d}"


def plan(settings: Settings) -> list[Task]:
    """The tasks still to do, in order: the base's evaluation, then per seed and method train and evaluate."""
    tasks = [] if (settings.runs / BASE / EVAL_JSON).is_file() else [Task("eval", BASE)]
    for seed in SEEDS:
        for method in METHODS:
            name = run_name(method, seed)
            if not final_checkpoint(settings, method, seed).is_dir():
                tasks.append(Task("train", name, method, seed))
            if not (settings.runs / name / EVAL_JSON).is_file():
                tasks.append(Task("eval", name, method, seed))
    return tasks


def train_command(settings: Settings, task: Task) -> list[str]:
    """``xalign-train train`` of one (method, seed), continuing from its newest checkpoint if any."""
    return [
        settings.python, "-m", "xalign.training.cli", "train", str(recipe_path(task.method)),
        "--seed", str(task.seed), "--output", str(settings.runs / task.run), "--resume", "--no-progress",
    ]  # fmt: skip


def eval_command(settings: Settings, task: Task, model_dir: Path, json_out: Path) -> list[str]:
    """``xalign-train eval`` on Tatoeba dev (5 languages), BUCC de-en (capped) and XNLI test (15 languages)."""
    data = settings.data
    return [
        settings.python, "-m", "xalign.training.cli", "eval", "--model-dir", str(model_dir),
        "--max-seq-length", "128", "--tatoeba-dir", str(data / "tatoeba"),
        "--bucc-dir", str(data / "bucc2018"), "--bucc-max", str(settings.bucc_max),
        "--xnli-dir", str(data / "xnli"), "--xnli-split", "test", "--xnli-max", str(settings.xnli_max),
        "--out", str(settings.runs / task.run / "eval.md"), "--json", str(json_out),
    ]  # fmt: skip


def model_dir(settings: Settings, task: Task) -> Path:
    """The model ``task`` evaluates: the offline base, or the run's final checkpoint."""
    if task.run == BASE:
        return settings.cache / "multilingual-e5-small-e5s1"
    return final_checkpoint(settings, task.method, task.seed)


def execute(settings: Settings, task: Task) -> None:
    """Run one task, its output appended to ``<run>/<kind>.log``; ``CalledProcessError`` if it fails."""
    folder = settings.runs / task.run
    folder.mkdir(parents=True, exist_ok=True)
    if task.kind == "train":
        _call(train_command(settings, task), folder / "train.log")
        return
    partial = folder / "eval.partial.json"
    _call(eval_command(settings, task, model_dir(settings, task), partial), folder / "eval.log")
    partial.replace(folder / EVAL_JSON)


def _call(command: list[str], log: Path) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"== {_now()} {' '.join(command)}\n")
        out.flush()
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, check=True)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _progress(message: str) -> None:
    sys.stdout.write(f"{_now()} {message}\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Do every task of the plan in order (or only list them with ``--dry-run``); stop at the first failure."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="list the tasks left and exit")
    parser.add_argument("--runs", type=Path, default=Settings.runs, help="runs folder (default: runs/comparison)")
    parser.add_argument("--data", type=Path, default=Settings.data, help="data folder (default: ../shared/data)")
    args = parser.parse_args(argv)
    settings = Settings(runs=args.runs.resolve(), data=args.data.resolve())
    tasks = plan(settings)
    _progress(f"{len(tasks)} task(s) left: {', '.join(f'{t.kind} {t.run}' for t in tasks) or 'none'}")
    if args.dry_run:
        return 0
    if any(t.run == BASE for t in tasks):
        from xalign.training.models.offline_e5 import ensure_offline_base  # noqa: PLC0415 - numpy-heavy

        ensure_offline_base(settings.cache)
    for number, task in enumerate(tasks, 1):
        _progress(f"start {task.kind} {task.run} ({number}/{len(tasks)})")
        started = time.monotonic()
        try:
            execute(settings, task)
        except subprocess.CalledProcessError as exc:
            _progress(f"FAILED {task.kind} {task.run}: exit {exc.returncode}; see {settings.runs / task.run}")
            return 1
        _progress(f"done {task.kind} {task.run} in {time.monotonic() - started:.0f} s")
    _progress("all tasks done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
