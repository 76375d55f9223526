"""The PNG plots of the Backpack SENSIA report (matplotlib, Agg backend), drawn from the results JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt

from xalign.training.trainer.metrics_log import save_figure

TARGET_RUNS = ("target_1x", "target_2x", "target_4x")
STYLE = {"sensia": ("tab:red", "o"), "joint": ("tab:blue", "s"), "source": ("tab:gray", "^")}


def perplexity_plot(results: Mapping[str, Any], png: Path) -> Path:
    """Target perplexity against distinct target sentences seen: target-only curve, SENSIA / joint points."""
    langs = list(results["langs"])
    figure, axes = plt.subplots(1, len(langs), figsize=(4.2 * len(langs), 3.8), squeeze=False)
    for ax, lang in zip(axes[0], langs, strict=True):
        models = results["langs"][lang]["models"]
        seen = [models[run]["target_lines"] for run in TARGET_RUNS]
        ax.plot(seen, [models[run]["ppl"] for run in TARGET_RUNS], "k--", marker="x", label="target-only")
        for run in ("sensia", "joint"):
            color, marker = STYLE[run]
            ax.plot([models[run]["target_lines"]], [models[run]["ppl"]], marker, color=color, markersize=9, label=run)
        ax.set_xscale("log", base=2)
        ax.set_xticks(seen, [str(n) for n in seen])
        ax.set_title(f"{lang}: Multi30k val perplexity")
        ax.set_xlabel("distinct target sentences seen")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("per-token perplexity (lower is better)")
    axes[0][0].legend()
    return save_figure(figure, png)


def retrieval_plot(results: Mapping[str, Any], png: Path) -> Path:
    """Grouped bars of en->x and x->en retrieval accuracy per model and language."""
    runs = ("source", "sensia", "joint", *TARGET_RUNS)
    langs = list(results["langs"])
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / len(runs)
    for ax, direction in zip(axes, ("en_x", "x_en"), strict=True):
        for r, run in enumerate(runs):
            values = [results["langs"][lang]["models"][run]["retrieval"][direction] for lang in langs]
            ax.bar([i + r * width for i in range(len(langs))], values, width, label=run)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(langs))], langs)
        ax.set_title(f"Multi30k val retrieval, {direction.replace('_', '->').replace('x', 'X')}")
        ax.set_ylim(0, 1)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("1-NN accuracy (1,014 sentences)")
    axes[1].legend(fontsize=8)
    return save_figure(figure, png)


def geometry_plot(results: Mapping[str, Any], png: Path) -> Path:
    """Bars of the three geometry scores per model and language: top row English words vs their translations,
    bottom row the source model's English senses vs the adapted model's."""
    rows = (("cross", ("source", "sensia", "joint", *TARGET_RUNS)), ("english", ("sensia", "joint")))
    metrics = ("knn_overlap", "distance_correlation", "procrustes_residual")
    langs = list(results["langs"])
    figure, axes = plt.subplots(2, 3, figsize=(14, 7))
    for row, (part, runs) in enumerate(rows):
        width = 0.8 / len(runs)
        for ax, metric in zip(axes[row], metrics, strict=True):
            for r, run in enumerate(runs):
                values = [results["langs"][lang]["models"][run]["geometry"][part][metric] for lang in langs]
                ax.bar([i + r * width for i in range(len(langs))], values, width, label=run)
            ax.set_xticks([i + 0.4 - width / 2 for i in range(len(langs))], langs)
            where = "en vs X senses" if part == "cross" else "English senses, source vs adapted"
            ax.set_title(f"{where}: {metric}", fontsize=9)
            ax.grid(True, axis="y", alpha=0.3)
        axes[row][2].legend(fontsize=8, bbox_to_anchor=(1.02, 1.0), loc="upper left")
    return save_figure(figure, png)


def distance_scatter(x: Sequence[float], y: Sequence[float], title: str, png: Path) -> Path:
    """Scatter of paired cosine distances (English space against the other space)."""
    figure, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(x, y, s=2, alpha=0.3)
    ax.set_xlabel("cosine distance, English senses (source model)")
    ax.set_ylabel("cosine distance, other space")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    return save_figure(figure, png)
