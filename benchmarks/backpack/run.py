"""Train every run of the Backpack SENSIA experiment, evaluate them, write the report and the served model.

    .venv/bin/python -m benchmarks.backpack.run            # trains what is missing, then evaluates

Runs (recipes in ``training/recipes/backpack/``, outputs under ``runs/backpack/``): ``source_en`` first
(tokenizer + English model), then per language X in de, fr, cs: ``sensia_X``, ``joint_X`` and
``target_X_{1,2,4}x``. A run whose ``final/training_manifest.json`` holds the current recipe text is reused,
not retrained (``--retrain`` forces it). Writes ``benchmarks/results/backpack_sensia.md``, the JSON and PNGs
in ``benchmarks/results/backpack_sensia/``, and copies ``sensia_de`` (with both recipes and manifests) to
``models/xalign-backpack-sensia/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.backpack.evaluate import distance_pairs, evaluate_language, load_checkpoint, val_texts
from benchmarks.backpack.lm_eval import next_words, perplexity
from benchmarks.backpack.plots import distance_scatter, geometry_plot, perplexity_plot, retrieval_plot
from benchmarks.backpack.report import render_markdown
from xalign.training.backpack_training.loop import FINAL_DIR, train_backpack
from xalign.training.backpack_training.manifest import MANIFEST_FILE, read_manifest
from xalign.training.backpack_training.recipe import BackpackRecipe, load_backpack_recipe
from xalign.training.models.backpack import CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "training" / "recipes" / "backpack"
RESULTS = REPO / "benchmarks" / "results"
SERVED = REPO / "models" / "xalign-backpack-sensia"
LANGS = ("de", "fr", "cs")
PHASE2 = ("sensia", "joint", "target_1x", "target_2x", "target_4x")
SERVED_LANG = "de"
PROBES = ("The bank of the river", "Die Bank am Fluss", "A man is riding a", "Ein Mann fährt")

log = logging.getLogger("benchmarks.backpack")


def recipe_file(run: str, lang: str) -> Path:
    """The recipe of a phase-2 run kind (``sensia``, ``target_2x`` ...) for ``lang``."""
    if run.startswith("target_"):
        return RECIPES / f"target_{lang}_{run.removeprefix('target_')}.toml"
    return RECIPES / f"{run}_{lang}.toml"


def ensure_trained(path: Path, retrain: bool, progress: bool) -> tuple[BackpackRecipe, Path]:
    """The recipe and its final checkpoint, trained now unless a checkpoint of the same recipe text exists."""
    recipe = load_backpack_recipe(path)
    final = Path(recipe.output) / FINAL_DIR
    done = not retrain and (final / MANIFEST_FILE).is_file()
    if done and read_manifest(final).recipe_text == path.read_text(encoding="utf-8"):
        log.info("reusing %s", final)
        return recipe, final
    log.info("training %s", path.name)
    return recipe, train_backpack(recipe, progress=progress, recipe_file=path).checkpoint


def target_lines(recipe: BackpackRecipe) -> int:
    """Distinct target sentences a phase-2 run draws from (rows of its parallel or text sources)."""
    sources = recipe.parallel or recipe.texts
    return sum((source.stop or 0) - source.start for source in sources)


def train_all(langs: Sequence[str], retrain: bool, progress: bool) -> tuple[Path, dict[str, dict[str, Any]]]:
    """Train (or reuse) every run; the source checkpoint and, per language, run kind -> (folder, lines)."""
    _, source = ensure_trained(RECIPES / "source_en.toml", retrain, progress)
    runs: dict[str, dict[str, Any]] = {}
    for lang in langs:
        runs[lang] = {}
        for run in PHASE2:
            recipe, folder = ensure_trained(recipe_file(run, lang), retrain, progress)
            runs[lang][run] = (folder, target_lines(recipe))
    return source, runs


def evaluate_all(source: Path, runs: dict[str, dict[str, Any]], data_root: Path) -> dict[str, Any]:
    """The results dictionary (``evaluate`` module) for every language, plus the source's English perplexity."""
    model, tokenizer = load_checkpoint(source)
    results: dict[str, Any] = {"source": {"en_val_ppl": perplexity(model, tokenizer, val_texts(data_root, "en"))}}
    results["langs"] = {}
    for lang, entries in runs.items():
        log.info("evaluating %s", lang)
        checkpoints = {"source": source, **{run: folder for run, (folder, _) in entries.items()}}
        lines = {run: count for run, (_, count) in entries.items()}
        results["langs"][lang] = evaluate_language(lang, checkpoints, data_root, lines)
    return results


def write_plots(results: dict[str, Any], source: Path, sensia: Path, data_root: Path, folder: Path) -> None:
    """The PNGs of the report into ``folder``."""
    perplexity_plot(results, folder / "perplexity.png")
    retrieval_plot(results, folder / "retrieval.png")
    geometry_plot(results, folder / "geometry.png")
    x, y = distance_pairs(source, sensia, SERVED_LANG, data_root)
    title = f"pairwise distances: {SERVED_LANG} words (SENSIA) vs their English (source)"
    distance_scatter(x, y, title, folder / f"distances_{SERVED_LANG}.png")


def save_served_model(sensia: Path, source: Path, dest: Path) -> Path:
    """Copy the SENSIA checkpoint, both recipes and both manifests into ``dest`` (replacing it)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE, MANIFEST_FILE):
        shutil.copy2(sensia / name, dest / name)
    shutil.copy2(source / MANIFEST_FILE, dest / "source_training_manifest.json")
    shutil.copy2(recipe_file("sensia", SERVED_LANG), dest / "recipe.toml")
    shutil.copy2(RECIPES / "source_en.toml", dest / "source_recipe.toml")
    return dest


def probe_next_words(checkpoints: dict[str, Path]) -> dict[str, dict[str, list[str]]]:
    """Top-5 next tokens after each probe text, per model (a look at whether English and German both work)."""
    found: dict[str, dict[str, list[str]]] = {}
    for name, folder in checkpoints.items():
        model, tokenizer = load_checkpoint(folder)
        found[name] = {text: next_words(model, tokenizer, text) for text in PROBES}
    return found


def served_readme(results: dict[str, Any], size: int) -> str:
    """README.md of the served model folder: what it is, how it was made, how it scored, the licences."""
    sensia = results["langs"][SERVED_LANG]["models"]["sensia"]
    return "\n".join(
        [
            "# xalign-backpack-sensia",
            "",
            "A tiny Backpack LM (Hewitt et al. 2023) trained on English, then adapted to German with SENSIA",
            "(target LM + English LM + sense-mixture and contextual alignment on 1,500 Multi30k en-de pairs).",
            f"Weights: {size / 1e6:.1f} MB float32 (model.safetensors). An English LM loss kept during",
            "adaptation keeps English working: it continues English and German text (see the probes in the report).",
            "",
            "- Recipes: `source_recipe.toml` (phase 1, tokenizer + English model) and `recipe.toml` (phase 2,",
            "  SENSIA); they live in `training/recipes/backpack/`. Rebuild with",
            "  `.venv/bin/python -m benchmarks.backpack.run`, or `xalign-train backpack` on both recipes in order.",
            "- Manifests: `training_manifest.json` (this model) and `source_training_manifest.json` (phase 1):",
            "  recipe text, data files with sha256, steps, last metrics.",
            f"- Multi30k val: {SERVED_LANG} perplexity {sensia['ppl']:.1f}, en perplexity {sensia['en_ppl']:.1f},",
            f"  retrieval en->{SERVED_LANG} {sensia['retrieval']['en_x']:.3f}, "
            f"{SERVED_LANG}->en {sensia['retrieval']['x_en']:.3f}",
            "  (benchmarks/results/backpack_sensia.md).",
            "- Data licences: Multi30k (Flickr30K-derived) and XNLI are non-commercial; the model is for research use.",
            "",
        ]
    )


def setup_lines(source: Path, runs: dict[str, dict[str, Any]]) -> list[str]:
    """The setup paragraph: sizes, data and budget, read from the checkpoints' manifests."""
    config = json.loads((source / CONFIG_FILE).read_text(encoding="utf-8"))
    src = read_manifest(source).recipe
    lang = next(iter(runs))
    phase2 = read_manifest(runs[lang]["sensia"][0]).recipe
    return [
        f"Backpack sizes: d={config['n_embd']}, k={config['n_senses']} senses, {config['n_layer']} layers, "
        f"{config['n_head']} heads, vocabulary {config['vocab_size']} (byte-level BPE on English + de/fr/cs), "
        f"{config['max_positions']} positions. CPU only (2 shared cores).",
        f"Source model: {src['steps']} steps x {src['batch_size']} English sentences (Multi30k train, NTREX-128, "
        "WMT newstest 2009/syscomb2009/2012/2013, XNLI dev+test), lr "
        f"{src['lr']}.",
        f"Phase 2, every run the same budget: {phase2['steps']} optimizer steps x {phase2['batch_size']} rows "
        f"(SENSIA/joint: pairs; target-only: texts). SENSIA and joint start from the source model on the first "
        f"{phase2['parallel'][0]['stop']} Multi30k train pairs per language; target-only models start from "
        "scratch on 1x/2x/4x that many target sentences (nested prefixes of the same file). SENSIA weights: "
        f"{phase2['objective']}.",
        "Perplexity is per token of the shared tokenizer (``</s>`` included). Multi30k val is never trained on.",
        "Multi30k, XNLI and MUSE are under non-commercial licences: research use only.",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Train, evaluate, report; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--langs", default=",".join(LANGS), help="comma-separated target languages")
    parser.add_argument("--retrain", action="store_true", help="retrain every run even if a checkpoint exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--no-served-model", action="store_true", help="do not write models/xalign-backpack-sensia")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    langs = [lang.strip() for lang in args.langs.split(",") if lang.strip()]
    source, runs = train_all(langs, args.retrain, not args.no_progress)
    data_root = load_backpack_recipe(RECIPES / "source_en.toml").data_root
    results = evaluate_all(source, runs, data_root)
    out = RESULTS / "backpack_sensia"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    sensia = runs[SERVED_LANG]["sensia"][0] if SERVED_LANG in runs else None
    if sensia is not None:
        write_plots(results, source, sensia, data_root, out)
        results["probes"] = probe_next_words({"source": source, f"sensia_{SERVED_LANG}": sensia})
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        if not args.no_served_model:
            folder = save_served_model(sensia, source, SERVED)
            size = (folder / WEIGHTS_FILE).stat().st_size
            (folder / "README.md").write_text(served_readme(results, size), encoding="utf-8")
    commands = [
        ".venv/bin/python -m benchmarks.backpack.run   # trains every recipe below that is missing, then this report",
        "# or one run at a time (source first):",
        ".venv/bin/xalign-train backpack training/recipes/backpack/source_en.toml",
        *[f".venv/bin/xalign-train backpack {recipe_file(run, x).relative_to(REPO)}" for x in langs for run in PHASE2],
    ]
    markdown = render_markdown(results, setup_lines(source, runs), commands)
    (RESULTS / "backpack_sensia.md").write_text(markdown, encoding="utf-8")
    sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
