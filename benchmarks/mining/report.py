"""Figures of the mining benchmarks: read an ``xalign-mine`` run's log and TSV, merge parts, write the tables.

The log holds the job's stage lines (``runtime/mining/progress.py``: ``label: N unit in T s (R unit/s)``)
and the report of ``/usr/bin/time -v``; F1 follows the BUCC evaluation (``training/evaluate/bucc.py``:
the threshold that maximises F1 over the TSV's scores, an oracle threshold).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from xalign.training.evaluate.bucc import IdPair, optimize_threshold, read_bucc_gold

STAGE = re.compile(r"^[\d-]+ [\d:,]+ ([^:\n]+): ([\d,]+) (\w+) in ([\d.]+) s \(", re.MULTILINE)
PEAK = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
WALL = re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)")
CPU = re.compile(r"Percent of CPU this job got: (\d+)%")
LOAD = re.compile(r"^(load_before|load_after): ([\d.]+)", re.MULTILINE)


def stage_times(log: str) -> dict[str, dict[str, float]]:
    """Each finished stage of the log → {count, seconds, per_s}; a stage logged twice keeps the last."""
    stages: dict[str, dict[str, float]] = {}
    for label, count, _unit, seconds in STAGE.findall(log):
        n, s = float(count.replace(",", "")), float(seconds)
        stages[label] = {"count": n, "seconds": s, "per_s": n / s if s > 0 else 0.0}
    return stages


def wall_seconds(text: str) -> float:
    """``h:mm:ss`` or ``m:ss.ss`` of ``/usr/bin/time -v`` → seconds."""
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def run_footprint(log: str) -> dict[str, float]:
    """Peak RSS (GiB), wall seconds, CPU share and the load averages the run script logged (last of each)."""
    found: dict[str, float] = {}
    if peaks := PEAK.findall(log):
        found["peak_rss_gib"] = int(peaks[-1]) / 1024 / 1024
    if walls := WALL.findall(log):
        found["wall_seconds"] = wall_seconds(walls[-1])
    if shares := CPU.findall(log):
        found["cpu_percent"] = float(shares[-1])
    for name, value in LOAD.findall(log):
        found[f"{name}_1min"] = float(value)
    return found


def tsv_scores(tsv: Path) -> dict[IdPair, float]:
    """``score TAB src-id TAB tgt-id TAB ...`` lines of an ``xalign-mine --ids`` output → (src-id, tgt-id) → score."""
    scores: dict[IdPair, float] = {}
    with tsv.open(encoding="utf-8") as handle:
        for line in handle:
            score, src, tgt = line.split("\t", 3)[:3]
            scores[(src, tgt)] = max(float(score), scores.get((src, tgt), float(score)))
    return scores


def side_ids(path: Path) -> set[str]:
    """The ids (first field) of an ``id TAB sentence`` file."""
    with path.open(encoding="utf-8") as handle:
        return {line.split("\t", 1)[0] for line in handle if line.strip()}


def bucc_figures(log: str, tsv: Path, gold_path: Path, sides: tuple[Path, Path] | None = None) -> dict[str, Any]:
    """Stages, footprint and best-threshold P/R/F1 of one run; ``sides`` restricts the gold to their ids."""
    gold = read_bucc_gold(gold_path)
    if sides is not None:
        src, tgt = side_ids(sides[0]), side_ids(sides[1])
        gold = frozenset((s, t) for s, t in gold if s in src and t in tgt)
    best = optimize_threshold(tsv_scores(tsv), gold)
    bucc = {k: getattr(best, k) for k in ("precision", "recall", "f1", "threshold", "gold", "extracted", "correct")}
    return {"stages": stage_times(log), **run_footprint(log), "bucc": bucc}


def merge_parts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Parts by kind: ``bucc`` runs keyed by label, ``exact`` runs by size, ``ivf`` runs by size and spread."""
    merged: dict[str, dict[str, Any]] = {"bucc": {}, "exact": {}, "ivf": {}}
    for part in parts:
        merged[part["kind"]][_part_key(part)] = part
    return merged


def _part_key(part: dict[str, Any]) -> str:
    if part["kind"] == "bucc":
        return str(part["label"])
    return str(part["n"]) if part["kind"] == "exact" else f"{part['n']}/{part['spread']}"


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Markdown lines of a table: the header, its rule, one line per row of cells."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def _load(before: float, after: float) -> str:
    return f"{_fmt(before)} → {_fmt(after)}"


def _bucc_cells(label: str, run: dict[str, Any]) -> list[str]:
    stages, b = run["stages"], run["bucc"]
    embed = [v for k, v in stages.items() if k.startswith("embed")]
    search = [v for k, v in stages.items() if k.startswith(("knn", "index"))]
    n, s = sum(v["count"] for v in embed), sum(v["seconds"] for v in embed)
    return [
        label, f"{int(n):,}", _fmt(s), _fmt(n / s if s else 0.0), _fmt(sum(v["seconds"] for v in search)),
        _fmt(run.get("wall_seconds", 0.0)), _fmt(run.get("peak_rss_gib", 0.0), 2),
        _fmt(run.get("cpu_percent", 0.0), 0),
        f"{_fmt(b['precision'])} / {_fmt(b['recall'])} / **{_fmt(b['f1'])}** ({b['gold']:,})",
        f"{b['threshold']:.4f}", _load(run.get("load_before_1min", 0.0), run.get("load_after_1min", 0.0)),
    ]  # fmt: skip


def bucc_rows(runs: dict[str, Any]) -> list[str]:
    """Markdown rows: label, sentences, embed s and sentences/s, search s, total wall, peak RSS, F1, load."""
    headers = [
        "run", "sentences (src + tgt distinct)", "embed s", "embed sent/s", "k-NN s", "wall s", "peak RSS GiB",
        "CPU %", "P / R / F1 (gold pairs)", "threshold", "load 1 min",
    ]  # fmt: skip
    return _table(headers, [_bucc_cells(label, run) for label, run in runs.items()])


def _size(run: dict[str, Any]) -> str:
    return f"{run['n']:,} x {run['n']:,} x {run['dim']}"


def exact_rows(runs: dict[str, Any]) -> list[str]:
    """Markdown rows of the exact k-NN runs against the matmul limit."""
    headers = [
        "n x n x d", "seconds", "matmul GFLOP/s (before / after)", "limit s", "ratio to limit", "achieved GFLOP/s",
        "peak RSS GiB", "load 1 min",
    ]  # fmt: skip
    rows = [
        [
            _size(r), _fmt(r["seconds"]), f"{_fmt(r['matmul_gflops_before'])} / {_fmt(r['matmul_gflops_after'])}",
            _fmt(r["limit_seconds"]), f"**{r['ratio_to_limit']:.2f}**", _fmt(r["achieved_gflops"]),
            _fmt(r["peak_rss_gib"], 2), _load(r["load_1min_before"], r["load_1min_after"]),
        ]
        for r in runs.values()
    ]  # fmt: skip
    return _table(headers, rows)


def ivf_rows(runs: dict[str, Any]) -> list[str]:
    """Markdown rows of the IVF runs."""
    headers = [
        "n x n x d", "spread", "nlist", "nprobe", "build s", "search s", "queries/s", "recall@1 (queries)",
        "peak RSS GiB", "load 1 min",
    ]  # fmt: skip
    rows = [
        [
            _size(r), str(r["spread"]), f"{r['nlist']:,}", str(r["nprobe"]), _fmt(r["build_seconds"]),
            _fmt(r["search_seconds"]), _fmt(r["queries_per_s"], 0),
            f"**{r['recall_at_1']:.3f}** ({r['recall_queries']:,})", _fmt(r["peak_rss_gib"], 2),
            _load(r["load_1min_before"], r["load_1min_after"]),
        ]
        for r in runs.values()
    ]  # fmt: skip
    return _table(headers, rows)


def commands(merged: dict[str, Any]) -> list[str]:
    """Every command behind the figures, in a fenced block."""
    lines = ["```sh"]
    for kind in ("bucc", "exact", "ivf"):
        for run in merged[kind].values():
            if run.get("run_command"):
                lines.append(run["run_command"])
            lines.append(run["command"])
    return [*lines, "```"]


def markdown(merged: dict[str, Any]) -> str:
    """The tables of ``benchmarks/results/mining.md`` (notes are added by hand below them)."""
    parts = ["## BUCC-2018 de-en with xalign-mine", "", *bucc_rows(merged["bucc"]), ""]
    parts += [f"- {label}: {run['note']}" for label, run in merged["bucc"].items() if run.get("note")]
    parts += ["", "## Exact k-NN, both directions (knn_chunked)", "", *exact_rows(merged["exact"]), ""]
    parts += ["## IVF (build_index ivf, knn_ann)", "", *ivf_rows(merged["ivf"]), ""]
    parts += ["## Commands", "", *commands(merged), ""]
    return "\n".join(parts)
