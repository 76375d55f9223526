"""The comparison's tables: per method mean ± sd over seeds, and which differences exceed the seed spread.

    .venv/bin/python -m benchmarks.alignment.comparison.summarize            # published runs -> results
    .venv/bin/python -m benchmarks.alignment.comparison.summarize --runs DIR --out PREFIX

Reads ``<runs>/<run>/eval.json`` (by default the runs that ``run.py`` published, committed, under
``benchmarks/results/alignment_comparison/runs/``) of the base and of every (method, seed) that ``run.py``
names, whatever is finished so far (the rest is listed as missing), and writes ``PREFIX.md``, ``PREFIX.json``
and one loss-curve figure per method (every seed's curves, ``PREFIX/<method>_loss.png``). The per-run table is
the pilot's (``benchmarks/alignment/summarize.py``). Each single-seed ablation that is finished (``run.py``'s
``ABLATIONS``) gets its headline metrics beside the seed-1 run of the method it changes, and a figure of both
runs' loss curves (``PREFIX/<ablation>_vs_<method>_loss.png``).

The rule for "exceeds the seed spread": two methods differ on a metric when ``|Δ mean| > 2 x pooled sd``, the
pooled sd being ``sqrt((sd_a² + sd_b²) / 2)`` of the two methods' sample sds (n - 1) over seeds; it needs at
least 2 seeds of each. With 3 seeds each that is a two-sided t-test at about p < 0.07 (t > 2.45, 4 df).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.alignment.comparison.run import ABLATIONS, BASE, EVAL_JSON, METHODS, REPO, SEEDS, Settings, run_name
from benchmarks.alignment.summarize import BUCC, table

Evaluation = Mapping[str, Mapping[str, float]]
# XNLI languages that some training recipe of the comparison reads; the other 10 are unseen in training.
TRAINED_XNLI = ("de", "es", "fr", "ru")
XNLI = "xnli-test"
# The headline metrics: (key, label).
HEADLINE = (
    ("tatoeba", "Tatoeba mean"),
    ("bucc_f1", "BUCC de-en F1"),
    ("xnli", "XNLI mean (14)"),
    ("xnli_unseen", "XNLI unseen (10)"),
)
SPREAD_FACTOR = 2.0


@dataclass(frozen=True)
class Stats:
    """One metric of one method over its seeds: mean, sample sd (None under 2 seeds) and the seed count."""

    mean: float
    sd: float | None
    n: int


def metrics(evaluation: Evaluation) -> dict[str, float]:
    """The compared numbers of one run: headline metrics and every Tatoeba direction (``tatoeba:deu-eng``)."""
    tatoeba = evaluation["tatoeba"]
    found = {"tatoeba": tatoeba["mean"], "bucc_f1": evaluation[BUCC]["f1"]}
    found |= {f"tatoeba:{d}": v for d, v in tatoeba.items() if d != "mean"}
    xnli = evaluation.get(XNLI)
    if xnli is not None:
        found["xnli"] = xnli["mean"]
        unseen = [v for d, v in xnli.items() if d != "mean" and not set(d.split("-")) & set(TRAINED_XNLI)]
        if unseen:
            found["xnli_unseen"] = statistics.fmean(unseen)
    return found


def load_runs(runs: Path) -> tuple[dict[str, dict[str, float]], list[str]]:
    """``{run: metrics}`` of every finished evaluation (base first), and the names of the missing ones."""
    names = [BASE, *(run_name(m, s) for s in SEEDS for m in METHODS)]
    found: dict[str, dict[str, float]] = {}
    for name in names:
        path = runs / name / EVAL_JSON
        if path.is_file():
            found[name] = metrics(json.loads(path.read_text(encoding="utf-8")))
    return found, [name for name in names if name not in found]


def method_stats(found: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, Stats]]:
    """``{method: {metric: Stats}}`` over the seeds found of each method (methods with none are left out)."""
    out: dict[str, dict[str, Stats]] = {}
    for method in METHODS:
        runs = [found[name] for s in SEEDS if (name := run_name(method, s)) in found]
        keys = sorted({key for run in runs for key in run})
        out[method] = {key: _stats([run[key] for run in runs if key in run]) for key in keys}
    return {method: stats for method, stats in out.items() if stats}


def _stats(values: Sequence[float]) -> Stats:
    sd = statistics.stdev(values) if len(values) >= 2 else None
    return Stats(mean=statistics.fmean(values), sd=sd, n=len(values))


def difference(a: Stats, b: Stats) -> dict[str, Any]:
    """``a - b`` with the pooled sd and whether ``|Δ| > 2 x pooled sd`` (None when either has under 2 seeds)."""
    delta = a.mean - b.mean
    if a.sd is None or b.sd is None:
        return {"delta": delta, "pooled_sd": None, "exceeds": None}
    pooled = math.sqrt((a.sd**2 + b.sd**2) / 2)
    return {"delta": delta, "pooled_sd": pooled, "exceeds": abs(delta) > SPREAD_FACTOR * pooled}


def pairwise(stats: Mapping[str, Mapping[str, Stats]]) -> list[dict[str, Any]]:
    """Every pair of methods (in ``METHODS`` order) on every headline metric both have."""
    rows = []
    for a, b in itertools.combinations(list(stats), 2):
        for key, _ in HEADLINE:
            if key in stats[a] and key in stats[b]:
                rows.append({"a": a, "b": b, "metric": key, **difference(stats[a][key], stats[b][key])})
    return rows


def _cell(stats: Stats | None) -> str:
    if stats is None:
        return "—"
    spread = f" ± {stats.sd:.2f}" if stats.sd is not None else ""
    return f"{stats.mean:.2f}{spread}"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def method_table(
    stats: Mapping[str, Mapping[str, Stats]], base: Mapping[str, float] | None, keys: Sequence[str]
) -> str:
    """Markdown: the base's value, then per method mean ± sd (seeds) of each metric in ``keys``."""
    lines = [_row(["method", "seeds", *keys]), "|" + "---|" * (len(keys) + 2)]
    if base is not None:
        lines.append(_row(["base", "—", *(f"{base[k]:.2f}" if k in base else "—" for k in keys)]))
    for method, by_key in stats.items():
        n = max(s.n for s in by_key.values())
        lines.append(_row([method, str(n), *(_cell(by_key.get(k)) for k in keys)]))
    return "\n".join(lines) + "\n"


def pairwise_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: each pair's Δ mean, pooled sd and verdict per headline metric."""
    labels = dict(HEADLINE)
    lines = [_row(["A - B", "metric", "Δ mean", "pooled sd", f"|Δ| > {SPREAD_FACTOR:g} x sd"]), "|---|---|---|---|---|"]
    for r in rows:
        pooled = "—" if r["pooled_sd"] is None else f"{r['pooled_sd']:.2f}"
        verdict = "n/a (< 2 seeds)" if r["exceeds"] is None else ("**yes**" if r["exceeds"] else "no")
        lines.append(_row([f"{r['a']} - {r['b']}", labels[r["metric"]], f"{r['delta']:+.2f}", pooled, verdict]))
    return "\n".join(lines) + "\n"


def claim_line(rows: Sequence[Mapping[str, Any]]) -> str:
    """The check of the claim that multi-way beats En-X on bitext mining (BUCC F1)."""
    for r in rows:
        if {r["a"], r["b"]} == {"en_x", "multiway"} and r["metric"] == "bucc_f1":
            sign = 1 if r["a"] == "multiway" else -1
            delta = sign * r["delta"]
            if r["exceeds"] is None:
                return f"multiway - en_x on BUCC F1: {delta:+.2f} (too few seeds to judge)."
            verdict = "exceeds" if r["exceeds"] else "does not exceed"
            return f"multiway - en_x on BUCC F1: {delta:+.2f}, which {verdict} the seed spread."
    return "multiway - en_x on BUCC F1: not measured yet."


def render(found: Mapping[str, Mapping[str, float]], missing: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The markdown page and the JSON record of whatever runs were found."""
    stats = method_stats(found)
    rows = pairwise(stats)
    base = found.get(BASE)
    directions = sorted({k for run in found.values() for k in run if k.startswith("tatoeba:")})
    parts = [
        "# Alignment comparison: four methods x three seeds\n",
        f"Runs found: {len(found)}; missing: {', '.join(missing) if missing else 'none'}.\n",
        "## Headline metrics (mean ± sd over seeds)\n",
        method_table(stats, base, [k for k, _ in HEADLINE]),
        "## Tatoeba per direction (mean ± sd over seeds)\n",
        method_table(stats, base, directions),
        f"## Differences between methods (rule: |Δ mean| > {SPREAD_FACTOR:g} x pooled sd)\n",
        pairwise_table(rows),
        claim_line(rows) + "\n",
    ]
    record = {
        "runs": dict(found),
        "missing": list(missing),
        "methods": {m: {k: vars(s) for k, s in by_key.items()} for m, by_key in stats.items()},
        "pairs": rows,
        "rule": f"|delta mean| > {SPREAD_FACTOR:g} x sqrt((sd_a^2 + sd_b^2) / 2), sample sd over seeds",
    }
    return "\n".join(parts), record


def per_run_table(runs: Path, names: Sequence[str]) -> str:
    """The pilot's table (``benchmarks/alignment/summarize.py``) of every run found, base first."""
    evaluations = {name: json.loads((runs / name / EVAL_JSON).read_text(encoding="utf-8")) for name in names}
    return table(evaluations) if evaluations else ""


def plot_losses(runs: Path, curves: Mapping[str, str], title: str, png: Path) -> Path | None:
    """Loss curves of several runs (``{label: run}``), one panel per series (total and each objective), into ``png``."""
    import matplotlib as mpl  # noqa: PLC0415 - only when drawing

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from xalign.training.trainer.metrics_log import METRICS_FILE, loss_series, read_metrics, save_figure  # noqa: PLC0415

    by_run = {label: loss_series(read_metrics(runs / run / METRICS_FILE)) for label, run in curves.items()}
    names = list(dict.fromkeys(name for series in by_run.values() for name in series))
    if not names:
        return None
    figure, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.8), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        for label, series in by_run.items():
            if name in series:
                axis.plot(*series[name], label=label, linewidth=1.0)
        axis.set_title(f"{title}: {name}")
        axis.set_xlabel("step")
        axis.grid(True, alpha=0.3)
        axis.legend()
    return save_figure(figure, png)


def plot_method_losses(runs: Path, method: str, png: Path) -> Path | None:
    """Every seed's loss curves of ``method`` into ``png``."""
    return plot_losses(runs, {f"seed {s}": run_name(method, s) for s in SEEDS}, method, png)


def ablations(runs: Path, out: Path) -> tuple[str, dict[str, Any]]:
    """Each finished ablation against its method's seed-1 run: a markdown table, the record, a loss figure."""
    lines, record = [], {}
    for ablation, method in ABLATIONS.items():
        changed, reference = run_name(ablation, 1), run_name(method, 1)
        paths = [runs / name / EVAL_JSON for name in (changed, reference)]
        if not all(path.is_file() for path in paths):
            continue
        a, b = (metrics(json.loads(path.read_text(encoding="utf-8"))) for path in paths)
        record[ablation] = {"against": reference, changed: a, reference: b}
        keys = [k for k, _ in HEADLINE if k in a and k in b]
        lines += [f"### {changed} against {reference} (one seed each)\n", _row(["run", *keys])]
        lines += [_row(["---"] * (len(keys) + 1)), _row([changed, *(f"{a[k]:.2f}" for k in keys)])]
        lines += [
            _row([reference, *(f"{b[k]:.2f}" for k in keys)]),
            _row(["Δ", *(f"{a[k] - b[k]:+.2f}" for k in keys)]),
        ]
        figure = plot_losses(
            runs, {changed: changed, reference: reference}, changed, out / f"{changed}_vs_{reference}_loss.png"
        )
        lines += [f"\n![{changed} loss]({out.name}/{figure.name})\n" if figure is not None else ""]
    if not lines:
        return "", record
    return "\n## Ablations\n\n" + "\n".join(lines) + "\n", record


def write_summary(runs: Path, out: Path) -> dict[str, Any]:
    """Write ``out.md``, ``out.json`` and ``out/<method>_loss.png``; returns the JSON record."""
    found, missing = load_runs(runs)
    markdown, record = render(found, missing)
    figures = [plot_method_losses(runs, m, out / f"{m}_loss.png") for m in METHODS]
    markdown += "\n## Every run (the pilot's table; Δ against the base)\n\n" + per_run_table(runs, list(found))
    markdown += "".join(f"\n![{f.stem}]({out.name}/{f.name})\n" for f in figures if f is not None)
    ablation_page, record["ablations"] = ablations(runs, out)
    markdown += ablation_page
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(markdown, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def main(argv: Sequence[str] | None = None) -> None:
    """Summarize the runs folder into the results files."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Settings.results, help="published runs (or the runner's folder)")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "alignment_comparison", help="output prefix"
    )
    args = parser.parse_args(argv)
    record = write_summary(args.runs, args.out)
    print(f"{args.out}.md: {len(record['runs'])} runs, {len(record['missing'])} missing")


if __name__ == "__main__":
    main()
