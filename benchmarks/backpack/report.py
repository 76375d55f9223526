"""The markdown report of the Backpack SENSIA experiment, rendered from the results dictionary.

The verdict on the seed claim is computed with stated thresholds, so a rerun states it the same way:

- "competitive with target-only models seeing 2-4x more target text": SENSIA's X perplexity is at most
  ``COMPETITIVE`` (5 %) above the better of target_2x and target_4x;
- "English sense geometry largely preserved": between the source model's and the SENSIA model's English
  senses, k-NN overlap >= 0.5 and distance correlation >= 0.8.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COMPETITIVE = 1.05
MIN_OVERLAP = 0.5
MIN_CORRELATION = 0.8
ROWS = ("source", "sensia", "joint", "target_1x", "target_2x", "target_4x")
LABELS = {
    "source": "English source model (no adaptation)",
    "sensia": "SENSIA (from source)",
    "joint": "joint LM, no alignment (from source)",
    "target_1x": "target-only from scratch, 1x text",
    "target_2x": "target-only from scratch, 2x text",
    "target_4x": "target-only from scratch, 4x text",
}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _models(results: Mapping[str, Any], lang: str) -> Mapping[str, Any]:
    models: Mapping[str, Any] = results["langs"][lang]["models"]
    return models


def perplexity_table(results: Mapping[str, Any]) -> list[str]:
    """Rows: models; columns: X perplexity per language, then English perplexity per language."""
    langs = list(results["langs"])
    head = ["model", "lines seen", *[f"ppl {x}" for x in langs], *[f"en ppl ({x} run)" for x in langs]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in ROWS:
        seen = _models(results, langs[0])[run]["target_lines"]
        ppl = [_fmt(_models(results, x)[run]["ppl"], 1) for x in langs]
        en = [_fmt(_models(results, x)[run]["en_ppl"], 1) for x in langs]
        lines.append(f"| {LABELS[run]} | {seen or '-'} | " + " | ".join(ppl + en) + " |")
    return lines


def retrieval_table(results: Mapping[str, Any]) -> list[str]:
    """Rows: models; columns: en->X and X->en accuracy per language."""
    langs = list(results["langs"])
    head = ["model", *[f"en->{x}" for x in langs], *[f"{x}->en" for x in langs]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in ROWS:
        cells = [_fmt(_models(results, x)[run]["retrieval"]["en_x"]) for x in langs]
        cells += [_fmt(_models(results, x)[run]["retrieval"]["x_en"]) for x in langs]
        lines.append(f"| {LABELS[run]} | " + " | ".join(cells) + " |")
    return lines


def geometry_table(results: Mapping[str, Any], part: str, runs: tuple[str, ...]) -> list[str]:
    """Rows: (language, model); columns: pairs, k-NN overlap, distance correlation, Procrustes residual."""
    head = ["lang", "model", "pairs", "k-NN overlap (k=10)", "chance", "distance corr.", "Procrustes residual"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lang, entry in results["langs"].items():
        for run in runs:
            scores = entry["models"][run]["geometry"].get(part)
            if scores is None:
                continue
            lines.append(
                f"| {lang} | {LABELS[run]} | {scores['pairs']} | {_fmt(scores['knn_overlap'])} | "
                f"{_fmt(entry['knn_chance'])} | {_fmt(scores['distance_correlation'])} | "
                f"{_fmt(scores['procrustes_residual'])} |"
            )
    return lines


def verdict(results: Mapping[str, Any]) -> list[str]:
    """One line per language and claim, with the numbers and thresholds behind it."""
    lines: list[str] = []
    for lang in results["langs"]:
        models = _models(results, lang)
        best = min(models["target_2x"]["ppl"], models["target_4x"]["ppl"])
        sensia = models["sensia"]["ppl"]
        held = sensia <= COMPETITIVE * best
        lines.append(
            f"- {lang}, perplexity: SENSIA {sensia:.1f} vs best of target-only 2x/4x {best:.1f} "
            f"(joint {models['joint']['ppl']:.1f}, target 1x {models['target_1x']['ppl']:.1f}): "
            f"**{'held' if held else 'did not hold'}** (competitive = at most {COMPETITIVE - 1:.0%} above)."
        )
        sensia_r, joint_r = models["sensia"]["retrieval"], models["joint"]["retrieval"]
        lines.append(
            f"- {lang}, what the alignment losses add (SENSIA vs joint): retrieval en->{lang} "
            f"{sensia_r['en_x']:.3f} vs {joint_r['en_x']:.3f}, {lang}->en {sensia_r['x_en']:.3f} vs "
            f"{joint_r['x_en']:.3f}; English perplexity {models['sensia']['en_ppl']:.1f} vs "
            f"{models['joint']['en_ppl']:.1f} (source model {results['source']['en_val_ppl']:.1f})."
        )
        english = models["sensia"]["geometry"]["english"]
        kept = english["knn_overlap"] >= MIN_OVERLAP and english["distance_correlation"] >= MIN_CORRELATION
        lines.append(
            f"- {lang}, English sense geometry (source vs SENSIA): overlap {english['knn_overlap']:.3f}, "
            f"correlation {english['distance_correlation']:.3f}, residual {english['procrustes_residual']:.3f}: "
            f"**{'preserved' if kept else 'not preserved'}** (thresholds overlap >= {MIN_OVERLAP}, "
            f"correlation >= {MIN_CORRELATION})."
        )
    return lines


def probe_lines(results: Mapping[str, Any]) -> list[str]:
    """Top-5 next tokens after the probe texts, per model (empty without probes)."""
    probes: Mapping[str, Mapping[str, list[str]]] = results.get("probes", {})
    if not probes:
        return []
    lines = ["## Next-word probes (top 5 tokens)", "", "| model | text | next tokens |", "|---|---|---|"]
    for model, found in probes.items():
        for text, words in found.items():
            shown = ", ".join(f"`{word.strip() or repr(word)}`" for word in words)
            lines.append(f"| {model} | {text} | {shown} |")
    return [*lines, ""]


def render_markdown(results: Mapping[str, Any], setup: list[str], commands: list[str]) -> str:
    """The whole report: setup, commands, the tables, the verdict and the plots."""
    source = results["source"]
    parts = [
        "# Backpack LMs and SENSIA adaptation at tiny scale",
        "",
        *setup,
        "",
        "## Commands",
        "",
        "```sh",
        *commands,
        "```",
        "",
        "## Held-out English perplexity of the source model",
        "",
        f"Multi30k val.en (1,014 sentences, never trained on): **{source['en_val_ppl']:.1f}** per token.",
        "",
        "## Target-language perplexity (Multi30k val, lower is better)",
        "",
        *perplexity_table(results),
        "",
        "## Sentence retrieval (Multi30k val, 1,014 pairs, mean-pooled contextual outputs, 1-NN cosine)",
        "",
        *retrieval_table(results),
        "",
        "## Sense geometry through the MUSE dictionaries",
        "",
        "English words' senses vs their translations' senses (target-only models: the source model's English",
        "senses vs the target-only model's X senses, since they never saw English):",
        "",
        *geometry_table(results, "cross", ROWS),
        "",
        "English preservation: the source model's English senses vs the adapted model's English senses:",
        "",
        *geometry_table(results, "english", ("sensia", "joint")),
        "",
        *probe_lines(results),
        "## Did the seed claim hold at this scale?",
        "",
        *verdict(results),
        "",
        "## Plots",
        "",
        "![perplexity](backpack_sensia/perplexity.png)",
        "![retrieval](backpack_sensia/retrieval.png)",
        "![geometry](backpack_sensia/geometry.png)",
        "![distances](backpack_sensia/distances_de.png)",
        "",
    ]
    return "\n".join(parts)
