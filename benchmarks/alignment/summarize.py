"""The comparison table of the alignment pilot, from the ``*.eval.json`` files ``run_pilot.sh`` writes.

    python -m benchmarks.alignment.summarize runs/pilot > table.md

Rows: the base then every recipe found; columns: each Tatoeba direction, the Tatoeba mean, BUCC de-en
F1; every recipe row also gives its change against the base (in points) for the mean and F1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ORDER = ("base", "en_x", "multiway", "dap", "multiway_align_mlm")
BUCC = "bucc2018-de-en"


def load(folder: Path) -> dict[str, dict[str, dict[str, float]]]:
    """``{run: evaluation}`` for every ``<run>.eval.json`` in ``folder``, base first then ``ORDER``."""
    found = {path.name.removesuffix(".eval.json"): path for path in folder.glob("*.eval.json")}
    names = [n for n in ORDER if n in found] + sorted(set(found) - set(ORDER))
    return {name: json.loads(found[name].read_text(encoding="utf-8")) for name in names}


def _signed(value: float) -> str:
    return f"{value:+.2f}"


def table(runs: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """A markdown table of the runs; the first run is the reference for the change columns."""
    first = next(iter(runs.values()))
    directions = [k for k in first["tatoeba"] if k != "mean"]
    head = ["run", *directions, "Tatoeba mean", "Δ mean", "BUCC F1", "Δ F1", "worst Δ direction"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, ev in runs.items():
        tat, f1 = ev["tatoeba"], ev[BUCC]["f1"]
        worst = min(tat[d] - first["tatoeba"][d] for d in directions)
        cells = [name, *(f"{tat[d]:.1f}" for d in directions), f"{tat['mean']:.2f}"]
        cells += [_signed(tat["mean"] - first["tatoeba"]["mean"]), f"{f1:.2f}", _signed(f1 - first[BUCC]["f1"])]
        cells.append(_signed(worst))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Print the table of the runs in the folder given as the only argument."""
    args = sys.argv[1:] if argv is None else argv
    sys.stdout.write(table(load(Path(args[0]))))


if __name__ == "__main__":
    main()
