"""The seeded comparison of the four alignment methods: train and evaluate every (method, seed), resumably.

    nice -n 19 .venv/bin/python -m benchmarks.alignment.comparison.run >> runs/comparison/progress.log 2>&1
    .venv/bin/python -m benchmarks.alignment.comparison.run --dry-run     # what is left to do, nothing run
    .venv/bin/python -m benchmarks.alignment.comparison.run --methods en_x_hard --seeds 1   # an ablation

The work is a fixed list of tasks (``plan``): evaluate the base, then for seed 1, 2, 3 and each method in
``METHODS``, train ``<method>.toml`` of this folder with ``--seed`` into ``runs/comparison/<method>-s<seed>/`` and
evaluate its last checkpoint. The state on disk says what is done, so the runner can be killed at any moment and
started again: a run whose last checkpoint (``step-<steps>``) exists is not trained again (an unfinished one
continues with ``--resume`` from its newest checkpoint), and an evaluation whose ``eval.json`` exists is not run
again (it is written under another name and renamed when complete). Seed-major order means that whatever is
finished when a session ends covers every method equally. Each command's output goes to ``train.log`` or
``eval.log`` beside the run; a timestamped progress line per task goes to stdout.

A session's machine does not outlive the session, and a run's checkpoints (hundreds of MB) are not committed.
What is committed is each finished run's record, published under ``benchmarks/results/alignment_comparison/runs/
<run>/`` once its evaluation completes: ``eval.json``, the training ``metrics.jsonl`` (the loss curves) and
``timing.json`` (wall and CPU seconds of each task). A run published there is done for good: the next
session's machine skips it and goes on with the first run that is not.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
METHODS = ("en_x", "multiway", "dap", "multiway_align_mlm")
SEEDS = (1, 2, 3)
# Single-seed ablations in this folder, run only when named (``--methods en_x_hard --seeds 1``): each is one
# method's recipe with one change (hard negatives; 4x the steps; the top 4 layers or the whole encoder trained),
# compared with that method's seed-1 run.
ABLATIONS = {
    "en_x_hard": "en_x",
    "en_x_240": "en_x",
    "multiway_top4": "multiway",
    "multiway_full": "multiway",
    "en_x_240_top4": "en_x_240",  # against the shipped default's run, itself an ablation
}
BASE = "base"
EVAL_JSON = "eval.json"
TIMING_JSON = "timing.json"
METRICS_JSONL = "metrics.jsonl"  # the trainer's metrics log (training/trainer/metrics_log.py)
# The base's depth (multilingual-e5-small). A recipe with ``train_top_layers`` N keeps the base's first 12 - N
# layers, so they give every such run the base's states on the evaluation texts: computed once
# (``--frozen-cache``), each evaluation then runs N layers. The cache folder is named by the frozen weights'
# sha256, so a wrong depth would cost time, never correctness.
BASE_LAYERS = 12


@dataclass(frozen=True)
class Settings:
    """Where runs go, where the data is, and how the evaluation is capped."""

    runs: Path = REPO / "runs" / "comparison"
    results: Path = REPO / "benchmarks" / "results" / "alignment_comparison" / "runs"
    data: Path = REPO.parent / "shared" / "data"
    cache: Path = REPO / ".cache" / "xalign"
    python: str = sys.executable
    bucc_max: int = 8000
    xnli_max: int = 1000
    methods: tuple[str, ...] = METHODS
    seeds: tuple[int, ...] = SEEDS


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
    steps: int = _recipe(method)["steps"]
    return steps


def frozen_layers(method: str) -> int | None:
    """The base layers that ``method``'s runs never change (None when the recipe trains the whole encoder)."""
    top = _recipe(method).get("train_top_layers")
    return None if top is None else BASE_LAYERS - int(top)


def _recipe(method: str) -> dict[str, Any]:
    with recipe_path(method).open("rb") as f:
        return tomllib.load(f)


def final_checkpoint(settings: Settings, method: str, seed: int) -> Path:
    """The checkpoint a finished run ends with (checkpoint folders appear only when complete)."""
    return settings.runs / run_name(method, seed) / f"step-{recipe_steps(method):06d}"


def published(settings: Settings, run: str) -> bool:
    """Whether ``run``'s record is published (committed): then it is done on every machine."""
    return (settings.results / run / EVAL_JSON).is_file()


def evaluated(settings: Settings, run: str) -> bool:
    """Whether ``run`` is evaluated: published, or evaluated on this machine (publishing then catches up)."""
    return published(settings, run) or (settings.runs / run / EVAL_JSON).is_file()


def unpublished(settings: Settings) -> list[str]:
    """Runs evaluated on this machine whose record did not reach the results folder (a walk killed between)."""
    names = [BASE, *(run_name(m, s) for s in settings.seeds for m in settings.methods)]
    return [name for name in names if evaluated(settings, name) and not published(settings, name)]


def plan(settings: Settings) -> list[Task]:
    """The tasks still to do, in order: the base's evaluation, then per seed and method train and evaluate."""
    tasks = [] if evaluated(settings, BASE) else [Task("eval", BASE)]
    for seed in settings.seeds:
        for method in settings.methods:
            name = run_name(method, seed)
            if evaluated(settings, name):
                continue
            if not final_checkpoint(settings, method, seed).is_dir():
                tasks.append(Task("train", name, method, seed))
            tasks.append(Task("eval", name, method, seed))
    return tasks


def train_command(settings: Settings, task: Task) -> list[str]:
    """``xalign-train train`` of one (method, seed), continuing from its newest checkpoint if any."""
    return [
        settings.python, "-m", "xalign.training.cli", "train", str(recipe_path(task.method)),
        "--seed", str(task.seed), "--output", str(settings.runs / task.run), "--resume", "--no-progress",
    ]  # fmt: skip


def eval_command(settings: Settings, task: Task, model_dir: Path, json_out: Path) -> list[str]:
    """``xalign-train eval`` on Tatoeba dev (5 languages), BUCC de-en (capped) and XNLI test (15 languages); a run
    that trained only its top layers reads the frozen layers' states from the shared cache."""
    data = settings.data
    return [
        settings.python, "-m", "xalign.training.cli", "eval", "--model-dir", str(model_dir),
        "--max-seq-length", "128", "--tatoeba-dir", str(data / "tatoeba"),
        "--bucc-dir", str(data / "bucc2018"), "--bucc-max", str(settings.bucc_max),
        "--xnli-dir", str(data / "xnli"), "--xnli-split", "test", "--xnli-max", str(settings.xnli_max),
        "--out", str(settings.runs / task.run / "eval.md"), "--json", str(json_out),
        *_frozen_options(settings, task),
    ]  # fmt: skip


def _frozen_options(settings: Settings, task: Task) -> list[str]:
    """``--frozen-cache`` for a run that trained only the top layers (none for the base, evaluated once)."""
    frozen = frozen_layers(task.method) if task.method else None
    if frozen is None:
        return []
    return ["--frozen-cache", str(settings.cache / "eval-frozen"), "--frozen-layers", str(frozen)]


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
        _record_timing(folder, "train", _call(train_command(settings, task), folder / "train.log"))
        return
    partial = folder / "eval.partial.json"
    timing = _call(eval_command(settings, task, model_dir(settings, task), partial), folder / "eval.log")
    _record_timing(folder, "eval", timing)
    partial.replace(folder / EVAL_JSON)
    publish(settings, task.run)


def publish(settings: Settings, run: str) -> Path:
    """Copy ``run``'s record (evaluation, loss log, timing) into the committed results folder; eval.json last,
    so that a half-published run is not taken for a finished one."""
    source, target = settings.runs / run, settings.results / run
    target.mkdir(parents=True, exist_ok=True)
    for name in (METRICS_JSONL, TIMING_JSON, EVAL_JSON):
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
    return target


def _record_timing(folder: Path, kind: str, timing: dict[str, float]) -> None:
    """Add one command's wall and CPU seconds to ``timing.json`` (a resumed training run adds up its parts)."""
    path = folder / TIMING_JSON
    record: dict[str, dict[str, float]] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    previous = record.get(kind, {})
    record[kind] = {key: round(previous.get(key, 0.0) + value, 1) for key, value in timing.items()}
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _call(command: list[str], log: Path) -> dict[str, float]:
    """Run ``command`` with its output appended to ``log``; its wall and CPU seconds (user + system)."""
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    with log.open("a", encoding="utf-8") as out:
        out.write(f"== {_now()} {' '.join(command)}\n")
        out.flush()
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": time.monotonic() - started, "cpu_s": cpu}


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
    parser.add_argument("--results", type=Path, default=Settings.results, help="where finished runs are published")
    parser.add_argument("--methods", nargs="+", choices=[*METHODS, *ABLATIONS], default=list(METHODS),
                        help="recipes of this folder to run (default: the four methods)")  # fmt: skip
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS), help="seeds (default: 1 2 3)")
    args = parser.parse_args(argv)
    settings = Settings(
        runs=args.runs.resolve(), data=args.data.resolve(), results=args.results.resolve(),
        methods=tuple(args.methods), seeds=tuple(args.seeds),
    )  # fmt: skip
    tasks = plan(settings)
    _progress(f"{len(tasks)} task(s) left: {', '.join(f'{t.kind} {t.run}' for t in tasks) or 'none'}")
    if args.dry_run:
        return 0
    for name in unpublished(settings):
        _progress(f"published {publish(settings, name)}")
    if tasks:
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
