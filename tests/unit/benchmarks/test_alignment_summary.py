"""The pilot's comparison table: base first, changes against it in points, the worst direction found."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.alignment.summarize import load, table


def _write(folder: Path, name: str, deu: float, eng: float, f1: float) -> None:
    evaluation = {
        "tatoeba": {"deu-eng": deu, "eng-deu": eng, "mean": (deu + eng) / 2},
        "bucc2018-de-en": {"f1": f1, "precision": 0.0, "recall": 0.0, "threshold": 1.0},
    }
    (folder / f"{name}.eval.json").write_text(json.dumps(evaluation), encoding="utf-8")


def test_base_first_and_changes_against_it(tmp_path: Path) -> None:
    _write(tmp_path, "dap", 99.0, 94.0, 97.0)
    _write(tmp_path, "base", 98.0, 96.0, 97.5)
    runs = load(tmp_path)
    assert list(runs) == ["base", "dap"]
    rows = table(runs).splitlines()
    assert rows[2].startswith("| base | 98.0 | 96.0 | 97.00 | +0.00 | 97.50 | +0.00 | +0.00 |")
    # mean 96.5 (-0.50), F1 -0.50, worst direction eng-deu -2.00
    assert rows[3] == "| dap | 99.0 | 94.0 | 96.50 | -0.50 | 97.00 | -0.50 | -2.00 |"
