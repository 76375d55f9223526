"""The data curve's PNGs (matplotlib, Agg backend), drawn from the summary of ``curve_report.summarize``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt

from xalign.training.trainer.metrics_log import save_figure


def _series(points: Mapping[str, Mapping[str, float]]) -> tuple[list[int], list[float], list[float]]:
    rows = sorted(int(r) for r in points)
    return rows, [points[str(r)]["mean"] for r in rows], [points[str(r)]["sd"] for r in rows]


def perplexity_plot(lang: str, entry: Mapping[str, Any], png: Path) -> Path:
    """Multi30k val perplexity against target sentences (log x): target-only mean +- sd, SENSIA's point."""
    figure, ax = plt.subplots(figsize=(5.2, 4.0))
    rows, mean, sd = _series(entry["ppl"]["target"])
    if rows:
        ax.errorbar(rows, mean, yerr=sd, fmt="k--x", capsize=4, label="target-only from scratch")
    s_rows, s_mean, s_sd = _series(entry["ppl"]["sensia"])
    if s_rows:
        ax.errorbar(s_rows, s_mean, yerr=s_sd, fmt="o", color="tab:red", markersize=9, capsize=4,
                    label="SENSIA (English source + N pairs)")  # fmt: skip
    c_rows, c_mean, c_sd = _series(entry["ppl"]["init_lm"])
    if c_rows:  # nudged right of SENSIA's point so both error bars stay readable
        ax.errorbar([r * 1.04 for r in c_rows], c_mean, yerr=c_sd, fmt="s", color="tab:blue", markersize=7,
                    capsize=4, label="English init, target LM only (control)")  # fmt: skip
    ticks = sorted({*rows, *s_rows})
    ax.set_xscale("log", base=2)
    if ticks:
        ax.set_xticks(ticks, [f"{t:,}" for t in ticks])
    ax.set_title(f"{lang}: Multi30k val perplexity ({entry['verdict']})", fontsize=10)
    ax.set_xlabel("target-language sentences trained on")
    ax.set_ylabel("per-token perplexity (lower is better)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(figure, png)


def retrieval_plot(summary: Mapping[str, Any], png: Path) -> Path:
    """Per language, bars of en->X and X->en retrieval (mean +- sd over seeds) of SENSIA and target-only runs."""
    langs = list(summary["langs"])
    figure, axes = plt.subplots(1, len(langs), figsize=(4.2 * len(langs), 3.8), squeeze=False, sharey=True)
    for ax, lang in zip(axes[0], langs, strict=True):
        entry = summary["langs"][lang]
        series = [(kind, rows) for kind in ("sensia", "init_lm", "target") for rows in _all_rows(summary, kind)]
        for offset, key in ((-0.2, "retrieval_en_x"), (0.2, "retrieval_x_en")):
            cells = [entry[key][kind].get(str(rows), {"mean": 0.0, "sd": 0.0}) for kind, rows in series]
            ax.bar([i + offset for i in range(len(series))], [c["mean"] for c in cells], 0.4,
                   yerr=[c["sd"] for c in cells], label="en->X" if key.endswith("en_x") else "X->en")  # fmt: skip
        ax.set_xticks(range(len(series)), [f"{kind}\n{rows:,}" for kind, rows in series], fontsize=7)
        ax.set_title(f"{lang}: Multi30k val retrieval (1-NN)", fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0][0].set_ylabel("accuracy (1,014 sentences)")
    axes[0][0].legend(fontsize=8)
    return save_figure(figure, png)


def _all_rows(summary: Mapping[str, Any], kind: str) -> list[int]:
    return sorted({int(r) for entry in summary["langs"].values() for r in entry["retrieval_en_x"][kind]})


def write_plots(summary: Mapping[str, Any], folder: Path) -> list[Path]:
    """``perplexity_<lang>.png`` for every language with a point, and ``retrieval.png``."""
    written = [
        perplexity_plot(lang, entry, folder / f"perplexity_{lang}.png")
        for lang, entry in summary["langs"].items()
        if entry["ppl"]["target"] or entry["ppl"]["sensia"]
    ]
    return [*written, retrieval_plot(summary, folder / "retrieval.png")]
