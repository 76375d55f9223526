"""SENSIA's claim on a data curve: train, evaluate and report the runs of ``curve_plan``, resumably.

    nice -n 19 .venv/bin/python -m benchmarks.backpack.curve run       # walk every run (safe to kill/restart)
    .venv/bin/python -m benchmarks.backpack.curve report               # report from the evaluations so far
    .venv/bin/python -m benchmarks.backpack.curve recipes              # write the generated recipes only

Run folders and recipes live under ``runs/backpack_curve/``, evaluation JSONs (committed: they are what carries
the curve from one session's machine to the next) under ``benchmarks/results/backpack_curve/runs/``
(``curve_runner.Layout``); the report goes to ``benchmarks/results/backpack_curve.md``, ``backpack_curve.json``
and the PNGs in ``benchmarks/results/backpack_curve/``. ``run`` rewrites the report after every evaluation.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.backpack.curve_markdown import render
from benchmarks.backpack.curve_plan import SEEDS, CurveRun, plan
from benchmarks.backpack.curve_plots import write_plots
from benchmarks.backpack.curve_report import summarize
from benchmarks.backpack.curve_runner import (
    Layout,
    Steps,
    read_eval,
    seconds_per_step,
    source_identity,
    walk,
    write_recipe,
)
from benchmarks.backpack.evaluate import dictionary_pairs, evaluate_model, load_checkpoint, val_texts
from benchmarks.backpack.lm_eval import perplexity
from xalign.training.backpack_training.loop import RunControl, train_backpack
from xalign.training.backpack_training.recipe import load_backpack_recipe

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
# Models stay on this machine; evaluations are committed, so the curve resumes on the next session's machine.
LAYOUT = Layout(REPO / "runs" / "backpack_curve", evals=RESULTS / "backpack_curve" / "runs")
log = logging.getLogger("benchmarks.backpack.curve")


def train(recipe_file: Path, resume: bool) -> None:
    """Train a recipe file, from its newest mid-run checkpoint when ``resume``; a checkpoint of an older recipe
    text is refused by the loop, and the run then starts again from step 0."""
    recipe = load_backpack_recipe(recipe_file)
    try:
        train_backpack(recipe, progress=False, recipe_file=recipe_file, control=RunControl(resume=resume))
    except ValueError as error:
        if not str(error).startswith("cannot resume"):
            raise
        log.warning("%s: %s; training from step 0", recipe.name, error)
        train_backpack(recipe, progress=False, recipe_file=recipe_file)


def evaluate(run: CurveRun, layout: Layout = LAYOUT) -> dict[str, Any]:
    """The run's measurements (``evaluate.evaluate_model``; a source: English val perplexity) and what it was."""
    final, data_root = layout.final(run), layout.data_root
    result: dict[str, Any] = {"name": run.name, "kind": run.kind, "lang": run.lang, "seed": run.seed,
                              "rows": run.rows, "size": run.size, "steps": run.steps,
                              "s_per_step": seconds_per_step(layout.output(run))}  # fmt: skip
    if run.kind == "source":
        model, tokenizer = load_checkpoint(final)
        return {**result, "en_ppl": perplexity(model, tokenizer, val_texts(data_root, "en"))}
    source_folder = layout.final(CurveRun("source", "en", 0, 0, run.size))
    source, tokenizer = load_checkpoint(source_folder)
    # Which source this run started from (a new machine retrains it, not bit-identically): ~5 s a run.
    result["source"] = {**source_identity(source_folder),
                        "en_ppl": perplexity(source, tokenizer, val_texts(data_root, "en"))}  # fmt: skip
    pairs = dictionary_pairs(data_root, run.lang, tokenizer)
    return {**result, **evaluate_model(run.kind, final, run.lang, data_root=data_root, source=source, pairs=pairs)}


def load_evals(runs: Sequence[CurveRun], layout: Layout = LAYOUT) -> list[dict[str, Any]]:
    """The cached evaluations of ``runs`` that exist, in plan order."""
    return [e for run in runs if (e := read_eval(layout.eval_file(run))) is not None]


def write_report(runs: Sequence[CurveRun], layout: Layout = LAYOUT, results: Path = RESULTS) -> Path:
    """``backpack_curve.md``, ``backpack_curve.json`` and the plots from the evaluations so far."""
    evals = load_evals(runs, layout)
    summary = summarize(evals)
    write_plots(summary, results / "backpack_curve")
    data = {"summary": summary, "runs": [{k: v for k, v in e.items() if k != "recipe_text"} for e in evals]}
    (results / "backpack_curve.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    markdown = results / "backpack_curve.md"
    markdown.write_text(render(runs, evals, summary), encoding="utf-8")
    return markdown


def _report_quietly(runs: Sequence[CurveRun]) -> None:
    try:
        write_report(runs)
    except Exception:  # a report bug must not stop hours of training
        log.exception("report failed; training goes on")


def main(argv: Sequence[str] | None = None) -> int:
    """The ``run`` / ``report`` / ``recipes`` commands; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("run", "report", "recipes"))
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="comma-separated seeds")
    parser.add_argument("--no-probe", action="store_true", help="leave out the d=256 size probe")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runs = plan([int(s) for s in args.seeds.split(",") if s.strip()], probe=not args.no_probe)
    if args.command == "recipes":
        for run in runs:
            log.info("wrote %s", write_recipe(run, LAYOUT))
    elif args.command == "report":
        log.info("wrote %s", write_report(runs))
    else:
        torch.set_num_threads(args.threads)
        walk(runs, LAYOUT, Steps(train=train, evaluate=evaluate, after_eval=lambda: _report_quietly(runs)))
        write_report(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
