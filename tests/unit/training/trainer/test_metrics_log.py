"""metrics.jsonl (append, truncate on resume) and the loss-curve PNG."""

from __future__ import annotations

from pathlib import Path

from xalign.training.trainer.metrics_log import MetricsLog, loss_series, plot_loss_curves, read_metrics


def test_append_truncate_and_plot(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "run" / "metrics.jsonl")
    for step in (1, 2, 3):
        log.append({"step": step, "lr": 1e-3, "loss": 3.0 - step, "losses": {"a": 1.0 / step, "b": 2.0}})
    log.append({"step": 3, "dev": {"tatoeba": {"mean": 50.0}}})
    log.truncate_after(2)
    records = read_metrics(log.path)
    assert [r["step"] for r in records] == [1, 2]
    series = loss_series(records)
    assert series["total"] == ([1, 2], [2.0, 1.0]) and series["a"] == ([1, 2], [1.0, 0.5])
    png = plot_loss_curves(records, tmp_path / "run" / "loss.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_file_has_no_records(tmp_path: Path) -> None:
    assert read_metrics(tmp_path / "none.jsonl") == []
