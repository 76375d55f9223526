"""The Backpack data curve (benchmarks/backpack/curve*.py): generated recipes, the runner's skip/resume decisions
and the report on fake evaluations. No training: the runner's train and evaluate steps are stand-ins."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from benchmarks.backpack import curve_plan
from benchmarks.backpack.curve import write_report
from benchmarks.backpack.curve_plan import PHASE2_STEPS, CurveRun, N, plan, recipe_text
from benchmarks.backpack.curve_report import Stat, compare, equivalent_rows, summarize
from benchmarks.backpack.curve_runner import (
    Layout,
    Steps,
    decide,
    run_lock,
    source_identity,
    walk,
    write_eval,
    write_recipe,
)
from xalign.training.backpack_training.manifest import BackpackRunManifest
from xalign.training.backpack_training.recipe import load_backpack_recipe

EVAL_FILES = ("val.", "tatoeba", "bucc", "muse")


def _sources(raw: dict[str, Any]) -> list[dict[str, Any]]:
    return [*raw.get("texts", []), *raw.get("parallel", []), *raw.get("tokenizer", {}).get("texts", [])]


def test_every_recipe_loads_and_phase2_runs_share_steps(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "main" / "runs" / "backpack_curve")
    runs = plan()
    recipes = {run.name: load_backpack_recipe(write_recipe(run, layout)) for run in runs}
    assert len(recipes) == len(runs) == 1 + 3 * 3 * 5 + 2
    phase2 = [run for run in runs if run.kind != "source"]
    assert {recipes[run.name].steps for run in phase2} == {PHASE2_STEPS}
    assert {recipes[run.name].batch_size for run in runs} == {curve_plan.BATCH}
    assert all(recipes[run.name].save_every > 0 and recipes[run.name].keep_checkpoints == 1 for run in runs)
    assert recipes["sensia_fr_7000_s2"].init == layout.final(CurveRun("source", "en", 0, 0))
    assert recipes["sensia_fr_7000_s2"].seed == 2


def test_target_sizes_are_nested_prefixes_and_sensia_sees_n() -> None:
    for lang in curve_plan.LANGS:
        for seed in curve_plan.SEEDS:
            mine = [run for run in plan() if run.lang == lang and run.seed == seed and run.size == "d128"]
            stops = {}
            for run in mine:
                raw = tomllib.loads(recipe_text(run))
                (source,) = raw.get("texts", raw.get("parallel"))
                assert source.get("start", 0) == 0 and source["split"] == "train"
                stops[run.kind, run.rows] = source["stop"]
            assert stops == {("target", N): N, ("target", 2 * N): 2 * N, ("target", 4 * N): 4 * N, ("sensia", N): N,
                             ("init_lm", N): N}  # fmt: skip
    assert 4 * N <= 29_000  # Multi30k train has 29,000 lines a language


def test_the_control_is_sensia_with_only_the_target_lm_on(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "runs")
    sensia, control = (load_backpack_recipe(write_recipe(CurveRun(kind, "cs", 1, N), layout))
                       for kind in ("sensia", "init_lm"))  # fmt: skip
    assert control.objective is not None and sensia.objective is not None
    assert (control.objective.target_lm, control.objective.source_lm) == (1.0, 0.0)
    assert not control.objective.aligns and sensia.objective.aligns and sensia.objective.source_lm == 1.0
    same = ("init", "parallel", "lr", "steps", "batch_size", "seed", "warmup_steps", "max_len")
    assert all(getattr(control, key) == getattr(sensia, key) for key in same)


def test_no_evaluation_data_is_trained_on() -> None:
    for run in plan():
        for source in _sources(tomllib.loads(recipe_text(run))):
            assert source.get("split") != "val", run.name
            assert not any(word in source["path"] for word in EVAL_FILES), run.name


def test_order_is_source_then_seed_by_seed() -> None:
    runs = plan()
    assert runs[0].name == "source_en"
    seeds = [run.seed for run in runs if run.kind != "source" and run.size == "d128"]
    assert seeds == sorted(seeds)
    assert [run.name for run in runs[-2:]] == ["source_en_d256", "sensia_de_7000_s0_d256"]


def _final(layout: Layout, run: CurveRun, text: str) -> None:
    final = layout.final(run)
    final.mkdir(parents=True)
    fields = {"step": 1, "steps": 1, "recipe": {}, "recipe_file": None, "data": [], "tokenizer_sha256": ""}
    BackpackRunManifest(name=run.name, recipe_text=text, **fields).write(final)


def _checkpoint(layout: Layout, run: CurveRun, step: int) -> None:
    folder = layout.output(run) / "checkpoints" / f"step-{step:06d}"
    folder.mkdir(parents=True)
    (folder / "training_state.pt").write_bytes(b"")


def test_decide_reads_the_state_on_disk(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    run = CurveRun("target", "de", 1, 2 * N)
    assert decide(run, layout) == "train"
    _checkpoint(layout, run, 250)
    assert decide(run, layout) == "resume"
    _final(layout, CurveRun("target", "de", 0, 2 * N), recipe_text(run))  # another run's final: no effect
    assert decide(run, layout) == "resume"
    _final(layout, run, "an older recipe")
    assert decide(run, layout) == "resume"  # a final of another recipe text is retrained


def test_decide_final_then_eval(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    run = CurveRun("sensia", "cs", 0, N)
    _final(layout, run, recipe_text(run))
    assert decide(run, layout) == "evaluate"
    write_eval(layout.eval_file(run), {"recipe_text": "stale"})
    assert decide(run, layout) == "evaluate"
    write_eval(layout.eval_file(run), {"recipe_text": recipe_text(run)})
    assert decide(run, layout) == "done"
    layout.eval_file(run).write_text("{half", encoding="utf-8")
    assert decide(run, layout) == "evaluate"


def test_walk_trains_with_resume_skips_done_and_prunes_checkpoints(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    runs = plan(seeds=(0,), langs=("de",), probe=False)
    trained: list[tuple[str, bool]] = []

    def train(recipe_file: Path, resume: bool) -> None:
        run = next(r for r in runs if r.name == recipe_file.stem)
        trained.append((run.name, resume))
        _final(layout, run, recipe_file.read_text(encoding="utf-8"))

    def evaluate(run: CurveRun) -> dict[str, Any]:
        return {"name": run.name}

    _checkpoint(layout, runs[1], 500)
    assert walk(runs, layout, Steps(train, evaluate)) == ["train", "resume", "train", "train", "train", "train"]
    assert trained == [(run.name, True) for run in runs]
    assert not (layout.output(runs[1]) / "checkpoints").exists()
    assert walk(runs, layout, Steps(train, evaluate)) == ["done"] * len(runs)
    assert len(trained) == len(runs)


def test_a_run_another_walker_holds_is_skipped_and_done_later(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    runs = plan(seeds=(0,), langs=("de",), probe=False)
    trained: list[str] = []

    def train(recipe_file: Path, resume: bool) -> None:
        trained.append(recipe_file.stem)
        _final(layout, next(r for r in runs if r.name == recipe_file.stem), recipe_file.read_text(encoding="utf-8"))

    steps = Steps(train, lambda run: {"name": run.name})
    # A second open file holds the lock, as another walker's process would (flock locks open files).
    with run_lock(layout.lock(runs[2]), wait=False) as held:
        assert held
        with run_lock(layout.lock(runs[2]), wait=False) as again:
            assert not again
        actions = walk(runs, layout, steps)
    assert actions[2] == "busy" and runs[2].name not in trained
    assert not layout.eval_file(runs[2]).exists()
    assert walk(runs, layout, steps) == ["done", "done", "train", "done", "done", "done"]
    assert trained.count(runs[2].name) == 1


def test_a_new_machine_retrains_a_source_only_for_runs_still_to_do(tmp_path: Path) -> None:
    # Committed evaluations, no models: the state a new session's machine starts from.
    layout = Layout(tmp_path / "runs", evals=tmp_path / "results")
    runs = plan(seeds=(0,), langs=("de",), probe=True)
    trained: list[str] = []

    def train(recipe_file: Path, resume: bool) -> None:
        run = next(r for r in runs if r.name == recipe_file.stem)
        trained.append(run.name)
        _final(layout, run, recipe_file.read_text(encoding="utf-8"))

    done = [run for run in runs if run.name not in ("sensia_de_7000_s0", "sensia_de_7000_s0_d256")]
    for run in done:
        write_eval(layout.eval_file(run), {"recipe_text": recipe_text(run)})
    assert not (tmp_path / "runs" / "evals").exists()
    actions = walk(runs, layout, Steps(train, lambda run: {"name": run.name}))
    assert actions == ["done"] * 4 + ["train"] + ["done"] * 2 + ["train"]
    # The default source once (for SENSIA de, then already there for the d256 source), the d256 source once.
    assert trained == ["source_en", "sensia_de_7000_s0", "source_en_d256", "sensia_de_7000_s0_d256"]


def test_compare_uses_the_seed_spread() -> None:
    assert compare(Stat(80, 2, 3), Stat(90, 3, 3)) == "beats"
    assert compare(Stat(80, 6, 3), Stat(90, 5, 3)) == "ties"
    assert compare(Stat(95, 1, 3), Stat(90, 1, 3)) == "loses"
    assert equivalent_rows(100.0, {N: Stat(120, 0, 1), 2 * N: Stat(100, 0, 1), 4 * N: Stat(90, 0, 1)}) == "14,000"
    assert equivalent_rows(80.0, {N: Stat(120, 0, 1), 4 * N: Stat(90, 0, 1)}) == "> 28,000"


def _eval(run: CurveRun, ppl: float, en_x: float = 0.0) -> dict[str, Any]:
    scores = {"knn_overlap": 0.1, "distance_correlation": 0.2, "procrustes_residual": 1.0, "pairs": 9, "k": 3}
    return {"name": run.name, "kind": run.kind, "lang": run.lang, "seed": run.seed, "rows": run.rows,
            "size": run.size, "steps": run.steps, "s_per_step": 0.3, "ppl": ppl, "en_ppl": 50.0,
            "retrieval": {"en_x": en_x, "x_en": en_x},
            "geometry": {"cross": scores, "english": scores}}  # fmt: skip


# Per language, target-only ppl at N, 2N, 4N, SENSIA's and the LM-only control's at N (seed s adds s): de holds,
# fr partly, cs fails; the English init helps de, and SENSIA's losses cost cs perplexity.
FAKE = {"de": (120.0, 100.0, 90.0, 85.0, 95.0), "fr": (120.0, 100.0, 90.0, 98.0, 98.0),
        "cs": (120.0, 100.0, 90.0, 110.0, 100.0)}  # fmt: skip


def _fake_evals(seeds: tuple[int, ...]) -> list[dict[str, Any]]:
    evals = []
    for lang, (t1, t2, t4, s, c) in FAKE.items():
        for seed in seeds:
            for rows, ppl in ((N, t1), (2 * N, t2), (4 * N, t4)):
                evals.append(_eval(CurveRun("target", lang, seed, rows), ppl + seed))
            evals.append(_eval(CurveRun("sensia", lang, seed, N), s + seed, en_x=0.5))
            evals.append(_eval(CurveRun("init_lm", lang, seed, N), c + seed, en_x=0.1))
    return evals


def test_summary_states_the_verdict_per_language() -> None:
    summary = summarize(_fake_evals((0, 1, 2)))
    assert [summary["langs"][x]["verdict"] for x in ("de", "fr", "cs")] == ["holds", "holds partly", "fails"]
    assert summary["overall"] == "holds partly"
    assert summary["langs"]["de"]["ppl"]["sensia"][str(N)] == {"mean": 86.0, "sd": 1.0, "n": 3}
    assert summary["probe"] is None
    assert summary["langs"]["de"]["control"]["init"] == {"delta": -25.0, "outcome": "beats"}
    assert summary["langs"]["cs"]["control"]["losses"] == {"delta": 10.0, "outcome": "loses"}
    assert summary["langs"]["fr"]["control"]["losses"] == {"delta": 0.0, "outcome": "ties"}


def test_summary_of_partial_results_is_incomplete_where_points_are_missing() -> None:
    evals = [e for e in _fake_evals((0,)) if not (e["lang"] == "cs" and e["kind"] == "sensia")]
    summary = summarize(evals)
    assert summary["langs"]["de"]["verdict"] == "holds"
    assert summary["langs"]["de"]["min_seeds"] == 1
    assert summary["langs"]["cs"]["verdict"] == "incomplete"
    assert summary["overall"] == "incomplete"


def test_report_on_fake_evaluations(tmp_path: Path) -> None:
    layout, results = Layout(tmp_path / "runs"), tmp_path / "results"
    runs = plan()
    evals = _fake_evals((0, 1))
    large = CurveRun("sensia", "de", 0, N, "d256")
    evals.append({**_eval(large, 80.0), "geometry": {"cross": {"knn_overlap": 0.2, "distance_correlation": 0.3},
                                                      "english": {"knn_overlap": 0.4}}})  # fmt: skip
    retrained = {"model_sha256": "ab" * 32, "tokenizer_sha256": "cd" * 32, "en_ppl": 30.734}
    evals[-2]["source"] = evals[-3]["source"] = retrained  # [-1] is the d256 probe
    for result in evals:
        write_eval(layout.eval_file(next(r for r in runs if r.name == result["name"])), result)
    markdown = write_report(runs, layout, results).read_text(encoding="utf-8")
    assert "- weights `abababababab`, tokenizer `cdcdcdcdcdcd`, English val perplexity 30.73: 2 runs" in markdown
    assert f"- not recorded: {len(evals) - 3} runs" in markdown
    assert f"Finished and evaluated: {len(evals)} of {len(runs)} runs; next: `source_en`." in markdown
    assert "- de: **holds**" in markdown and "- cs: **fails**" in markdown
    assert "the claim holds partly" in markdown
    assert "| de | 120.5 ± 0.7 (2) | 100.5 ± 0.7 (2) | 90.5 ± 0.7 (2) | 85.5 ± 0.7 (2) |" in markdown
    assert "- cs: English init (LM only minus target-only 7,000): -20.0 perplexity (lower, beyond" in markdown
    assert "(SENSIA minus LM only): +10.0 perplexity (higher, beyond the seed spread)." in markdown
    assert "The larger Backpack reads better senses" in markdown
    for png in ("perplexity_de.png", "perplexity_fr.png", "perplexity_cs.png", "retrieval.png"):
        assert (results / "backpack_curve" / png).stat().st_size > 1000
    data = json.loads((results / "backpack_curve.json").read_text(encoding="utf-8"))
    assert data["summary"]["overall"] == "holds partly" and "recipe_text" not in data["runs"][0]


def test_source_identity_tells_a_retrained_source_apart(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "tokenizer.json").write_text("{}", encoding="utf-8")
        (tmp_path / name / "model.safetensors").write_bytes(b"weights" + name.encode())
    first, second = source_identity(tmp_path / "a"), source_identity(tmp_path / "b")
    assert first["tokenizer_sha256"] == second["tokenizer_sha256"]
    assert first["model_sha256"] != second["model_sha256"] and len(first["model_sha256"]) == 64


@pytest.mark.parametrize("run", [CurveRun("source", "en", 0, 0), CurveRun("source", "en", 0, 0, "d256")])
def test_source_sizes_share_one_tokenizer(run: CurveRun) -> None:
    raw = tomllib.loads(recipe_text(run))
    assert ("tokenizer" in raw) == (run.size == "d128")
    assert raw["model"]["n_embd"] == curve_plan.SIZES[run.size]
