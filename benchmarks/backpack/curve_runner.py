"""The resumable walk over the data curve's runs: train (from the newest mid-run checkpoint), evaluate once.

Every run's state lives on disk (``Layout``), so the walk can be killed at any moment and started again:
``decide`` reads that state, and

- ``done``: ``<evals>/<name>.json`` holds the evaluation of the current recipe text: skipped;
- ``evaluate``: ``<name>/final/`` holds a model of the current recipe text: evaluated, not retrained;
- ``resume``: a mid-run checkpoint exists: training goes on from it (``xalign-train backpack --resume``);
- ``train``: nothing yet: training starts at step 0.

A checkpoint written under an older recipe is refused by the training loop ("cannot resume"); the run then
starts afresh. Once ``final/`` exists the mid-run checkpoints are deleted (they are 3x the model's size).
An evaluation JSON is written to a temporary file and renamed, so a killed walk never leaves half of one.
Several walkers may share the plan (one per core): each run is taken under an exclusive ``flock``, and a run
another walker holds is skipped (``busy``); a source that a run needs is waited for instead.

Models and checkpoints live under ``runs/backpack_curve/`` (ignored by git), but the evaluations live in a
tracked folder (``benchmarks/results/backpack_curve/runs/``): a session's machine does not outlive the session,
so the curve advances across sessions one committed evaluation at a time. A run whose evaluation is committed
is never trained again; a source whose evaluation is committed but whose model is not on this machine is
trained again (same recipe and seed) only when a run that needs it (its tokenizer, SENSIA's init, the
evaluation's English model) is still to be trained or evaluated.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from benchmarks.backpack.curve_plan import DATA_ROOT, DEFAULT_SIZE, CurveRun, recipe_text
from xalign.modelstore.integrity import sha256_file
from xalign.training.backpack_training.checkpoints import CHECKPOINTS_DIR, latest_state
from xalign.training.backpack_training.loop import FINAL_DIR
from xalign.training.backpack_training.manifest import MANIFEST_FILE, read_manifest
from xalign.training.trainer.metrics_log import METRICS_FILE, read_metrics

Action = Literal["done", "evaluate", "resume", "train", "busy"]
log = logging.getLogger("benchmarks.backpack.curve")


@dataclass(frozen=True)
class Layout:
    """Where the curve keeps its recipes, run folders and evaluation JSONs."""

    root: Path
    evals: Path | None = None

    def recipe(self, run: CurveRun) -> Path:
        """The generated recipe file of ``run``."""
        return self.root / "recipes" / f"{run.name}.toml"

    def output(self, run: CurveRun) -> Path:
        """The run's output folder (metrics, checkpoints, ``final/``)."""
        return self.root / run.name

    def final(self, run: CurveRun) -> Path:
        """The run's finished model."""
        return self.output(run) / FINAL_DIR

    def lock(self, run: CurveRun) -> Path:
        """The file a walker locks while it trains or evaluates ``run``."""
        return self.root / "locks" / f"{run.name}.lock"

    def eval_file(self, run: CurveRun) -> Path:
        """The cached evaluation of the run."""
        return (self.evals or self.root / "evals") / f"{run.name}.json"

    @property
    def data_root(self) -> Path:
        """The data folder the recipes name (``DATA_ROOT`` against the recipes' folder)."""
        return (self.root / "recipes" / DATA_ROOT).resolve()


def read_eval(path: Path) -> dict[str, Any] | None:
    """An evaluation JSON, or None when absent or unreadable (a walk killed before the rename leaves none)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def has_model(run: CurveRun, layout: Layout) -> bool:
    """Whether this machine holds ``run``'s trained model, made by the run's current recipe text."""
    final = layout.final(run)
    return (final / MANIFEST_FILE).is_file() and read_manifest(final).recipe_text == recipe_text(run)


def source_identity(final: Path) -> dict[str, str]:
    """The sha256 of a source model's weights and tokenizer. A source retrained on another machine is not
    bit-identical (likely, not verified: float kernels summing in another order on another CPU), so each
    phase-2 evaluation records which source it started from and the report can tell source-to-source
    variation from seed-to-seed."""
    return {f"{name}_sha256": sha256_file(final / file) for name, file in (("model", "model.safetensors"),
                                                                        ("tokenizer", "tokenizer.json"))}  # fmt: skip


def decide(run: CurveRun, layout: Layout) -> Action:
    """What the walk does with ``run`` now (see the module docstring)."""
    cached = read_eval(layout.eval_file(run))
    if cached is not None and cached.get("recipe_text") == recipe_text(run):
        return "done"
    if has_model(run, layout):
        return "evaluate"
    return "resume" if latest_state(layout.output(run)) is not None else "train"


def write_recipe(run: CurveRun, layout: Layout) -> Path:
    """Write the run's recipe file (only when its text changed, so its time stamp says when it last did)."""
    path, text = layout.recipe(run), recipe_text(run)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


def write_eval(path: Path, result: dict[str, Any]) -> Path:
    """Write ``result`` as JSON atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    staged.replace(path)
    return path


def seconds_per_step(output: Path) -> float | None:
    """Mean wall seconds per optimizer step over the run's metrics records (None before the first)."""
    records = [r for r in read_metrics(output / METRICS_FILE) if r.get("sequences_per_s")]
    if not records:
        return None
    batch = json.loads((output / FINAL_DIR / MANIFEST_FILE).read_text(encoding="utf-8"))["recipe"]["batch_size"]
    return float(sum(batch / r["sequences_per_s"] for r in records) / len(records))


@dataclass(frozen=True)
class Steps:
    """What the walk calls: ``train(recipe_file, resume)`` and ``evaluate(run)`` (injected for tests)."""

    train: Callable[[Path, bool], None]
    evaluate: Callable[[CurveRun], dict[str, Any]]
    after_eval: Callable[[], None] = lambda: None


@contextmanager
def run_lock(path: Path, *, wait: bool) -> Iterator[bool]:
    """An exclusive ``flock`` on ``path``; yields whether this walker holds it (without ``wait``, False at once
    when another does). The kernel drops the lock when its process dies, so a killed walker leaves none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_one(run: CurveRun, layout: Layout, steps: Steps) -> Action:
    """Bring ``run`` to ``done``, unless another walker holds it (``busy``); returns the action it started from."""
    with run_lock(layout.lock(run), wait=False) as held:
        if not held:
            log.info("%s: another walker holds it, skipped", run.name)
            return "busy"
        return _bring_to_done(run, layout, steps)


def _bring_to_done(run: CurveRun, layout: Layout, steps: Steps) -> Action:
    action = decide(run, layout)  # under the lock: another walker may have finished it meanwhile
    if action == "done":
        log.info("%s: done, skipped", run.name)
        return action
    _ensure_sources(run, layout, steps)  # training and evaluating both read the source's model
    if action in ("train", "resume"):
        started = time.perf_counter()
        log.info("%s: %s", run.name, "resuming from " + str(latest_state(layout.output(run))) if action == "resume"
                 else "training from step 0")  # fmt: skip
        steps.train(write_recipe(run, layout), True)
        log.info("%s: trained in %.0f s", run.name, time.perf_counter() - started)
    shutil.rmtree(layout.output(run) / CHECKPOINTS_DIR, ignore_errors=True)
    started = time.perf_counter()
    result = {**steps.evaluate(run), "recipe_text": recipe_text(run)}
    write_eval(layout.eval_file(run), result)
    log.info("%s: evaluated in %.0f s: %s", run.name, time.perf_counter() - started, _headline(result))
    steps.after_eval()
    return action


def dependencies(run: CurveRun) -> list[CurveRun]:
    """The source runs whose models ``run`` trains from: its source, and for a wider source the default one
    (whose tokenizer it shares)."""
    if run.kind != "source":
        return [CurveRun("source", "en", 0, 0, run.size)]
    return [] if run.size == DEFAULT_SIZE else [CurveRun("source", "en", 0, 0)]


def _ensure_sources(run: CurveRun, layout: Layout, steps: Steps) -> None:
    for source in dependencies(run):
        _ensure_sources(source, layout, steps)
        with run_lock(layout.lock(source), wait=True):  # another walker may be training it: wait, then look
            _ensure_model(source, run, layout, steps)


def _ensure_model(source: CurveRun, run: CurveRun, layout: Layout, steps: Steps) -> None:
    if has_model(source, layout):
        return
    log.info("%s: its source %s has no model on this machine; training it again", run.name, source.name)
    started = time.perf_counter()
    steps.train(write_recipe(source, layout), True)
    log.info("%s: trained in %.0f s", source.name, time.perf_counter() - started)


def _headline(result: dict[str, Any]) -> str:
    if "ppl" not in result:
        return f"en ppl {result.get('en_ppl', float('nan')):.1f}"
    retrieval = result["retrieval"]
    return f"ppl {result['ppl']:.1f}, retrieval en->x {retrieval['en_x']:.3f}, x->en {retrieval['x_en']:.3f}"


def walk(runs: Sequence[CurveRun], layout: Layout, steps: Steps) -> list[Action]:
    """``run_one`` over ``runs`` in order; the actions each started from."""
    log.info("walking %d runs under %s", len(runs), layout.root)
    return [run_one(run, layout, steps) for run in runs]
