"""Training metrics: one JSON line per logged step, and a loss-curve PNG drawn from them.

Records look like ``{"step": 12, "lr": 1.9e-05, "loss": 1.83, "losses": {"translation_ranking": 1.7, ...},
"examples_per_s": 41.2}``; dev evaluations add ``{"step": 200, "dev": {"tatoeba": {...}}}`` records. A resumed
run first drops the records after its checkpoint's step, so the file never holds a step twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
LOSS_CURVE_FILE = "loss_curve.png"


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every record of a metrics file, in order (an absent file has none)."""
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class MetricsLog:
    """Appends records to ``path`` (JSON lines), flushing each so a crash loses at most one line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def truncate_after(self, step: int) -> None:
        """Drop records of steps after ``step`` (left by a run that stopped after its last checkpoint)."""
        kept = [record for record in read_metrics(self.path) if int(record.get("step", 0)) <= step]
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in kept)
        self.path.write_text(text, encoding="utf-8")

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one record as one line."""
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(dict(record), ensure_ascii=False) + "\n")


def loss_series(records: Sequence[Mapping[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """``{"total": (steps, values), objective: (steps, values), ...}`` from the training records."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for record in records:
        if "loss" not in record:
            continue
        named = {"total": record["loss"], **record.get("losses", {})}
        for name, value in named.items():
            steps, values = series.setdefault(name, ([], []))
            steps.append(int(record["step"]))
            values.append(float(value))
    return series


def plot_loss_curves(records: Sequence[Mapping[str, Any]], png: Path) -> Path:
    """Draw the total loss and each objective's loss against the step into ``png`` (matplotlib, Agg)."""
    import matplotlib as mpl  # noqa: PLC0415 - drawing is rare; keep imports light

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    series = loss_series(records)
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for name, (steps, values) in series.items():
        axes.plot(steps, values, label=name, linewidth=2.0 if name == "total" else 1.0)
    axes.set_xlabel("step")
    axes.set_ylabel("loss (unweighted per objective; total is weighted)")
    axes.set_title("training loss")
    axes.grid(True, alpha=0.3)
    if series:
        axes.legend()
    return save_figure(figure, png)


def redraw_loss_curve(output: Path) -> Path:
    """Draw ``output/loss_curve.png`` from ``output/metrics.jsonl`` (both trainers do after each save)."""
    return plot_loss_curves(read_metrics(output / METRICS_FILE), output / LOSS_CURVE_FILE)


def save_figure(figure: Any, png: Path) -> Path:
    """Lay out ``figure``, write it to ``png`` (100 dpi, parent folders made) and close it, also on failure."""
    import matplotlib.pyplot as plt  # noqa: PLC0415 - drawing is rare; keep imports light

    try:
        figure.tight_layout()
        png.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(png, dpi=100)
    finally:
        plt.close(figure)
    return png
