"""The overload benchmark's figures: per-kind summaries, the table of runs, and the results files."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.overload.workload import Answer, Gauges, Plan
from benchmarks.protocol import REPO, THREADS

RESULTS = REPO / "benchmarks" / "results"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (inclusive method); None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1])


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def summarize_kind(answers: Sequence[Answer], kind: str, seconds: float) -> dict[str, Any]:
    """Counts per outcome, p50/p99 of the 200s, successes per minute and refusals without Retry-After."""
    mine = [a for a in answers if a.kind == kind]
    ok = [a.seconds for a in mine if a.status == 200]
    refusals = [a for a in mine if a.status in (429, 503)]
    return {
        "requests": len(mine),
        "200": len(ok),
        "429": sum(1 for a in mine if a.status == 429),
        "503": sum(1 for a in mine if a.status == 503),
        "other_status": sum(1 for a in mine if a.status not in (0, 200, 429, 503)),
        "timeout": sum(1 for a in mine if a.note == "timeout"),
        "error": sum(1 for a in mine if a.note == "error"),
        "cut_at_end": sum(1 for a in mine if a.note == "cut"),
        "refusals_without_retry_after": sum(1 for a in refusals if not a.retry_after),
        "p50_s": _rounded(percentile(ok, 50)),
        "p99_s": _rounded(percentile(ok, 99)),
        "refusal_p50_s": _rounded(percentile([a.seconds for a in refusals], 50)),
        "refusal_p99_s": _rounded(percentile([a.seconds for a in refusals], 99)),
        "max_answer_s": _rounded(max((a.seconds for a in mine if a.note != "cut"), default=None)),
        "successes_per_min": round(len(ok) * 60 / seconds, 1) if seconds > 0 else None,
    }


def summarize_gauges(gauges: Gauges) -> dict[str, Any]:
    """Largest queue gauges seen (None where the server has no such gauge)."""
    texts = [t for _, t, _ in gauges.series if t is not None]
    tokens = [k for _, _, k in gauges.series if k is not None]
    return {
        "max_queue_texts": int(max(texts)) if texts else None,
        "max_queue_tokens": int(max(tokens)) if tokens else None,
        "polls": len(gauges.series),
        "failed_polls": gauges.failed_polls,
    }


def summarize(run: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """The figures of one run from its raw phases."""
    probes = run["probes"]
    ok = [a.seconds for a in probes if a.status == 200]
    recovery_after = run["recovery"]["after"]
    return {
        "baseline_p50_s": _rounded(percentile(run["baseline"], 50), 4),
        "mine": summarize_kind(run["answers"], "mine", plan.seconds),
        "embed": summarize_kind(run["answers"], "embed", plan.seconds),
        "queue": summarize_gauges(run["gauges"]),
        "probe": {
            "requests": len(probes),
            "200": len(ok),
            "p50_s": _rounded(percentile(ok, 50)),
            "p99_s": _rounded(percentile(ok, 99)),
            "max_s": _rounded(max((a.seconds for a in probes), default=None)),
        },
        "recovery_s": run["recovery"]["recovered_after_s"],
        "recovery_limit_s": plan.recovery_limit_s,
        "after_recovery_p50_s": _rounded(percentile(recovery_after, 50), 4),
        "after_recovery_max_s": _rounded(max(recovery_after, default=None), 4),
        "disconnect": run["disconnect"],
    }


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}{unit}" if value < 1 else f"{value:,.2f}{unit}"
    return f"{value:,}{unit}" if isinstance(value, int) else f"{value}{unit}"


def _kind_rows(kind: str) -> list[tuple[str, Any]]:
    def counts(s: dict[str, Any]) -> str:
        k = s[kind]
        return f"{k['requests']:,}: {k['200']:,} / {k['429']:,} / {k['503']:,} / {k['other_status']:,}"

    def failures(s: dict[str, Any]) -> str:
        k = s[kind]
        return f"{k['timeout']} / {k['error']} / {k['cut_at_end']} / {k['refusals_without_retry_after']}"

    def latency(s: dict[str, Any]) -> str:
        return f"{_fmt(s[kind]['p50_s'], ' s')} / {_fmt(s[kind]['p99_s'], ' s')}"

    def refused(s: dict[str, Any]) -> str:
        return f"{_fmt(s[kind].get('refusal_p50_s'), ' s')} / {_fmt(s[kind].get('refusal_p99_s'), ' s')}"

    return [
        (f"{kind}: requests: 200 / 429 / 503 / other", counts),
        (f"{kind}: client timeouts / errors / cut at end / refusals without Retry-After", failures),
        (f"{kind}: p50 / p99 of the 200s", latency),
        (f"{kind}: p50 / p99 of the 429s and 503s", refused),
        (f"{kind}: longest answer", lambda s: _fmt(s[kind]["max_answer_s"], " s")),
    ]


def _rows() -> list[tuple[str, Any]]:
    def recovered(s: dict[str, Any]) -> str:
        if s["recovery_s"] is None:
            return f"not within {s['recovery_limit_s']:.0f} s"
        return _fmt(s["recovery_s"], " s")

    def disc(s: dict[str, Any]) -> str:
        one = s["disconnect"]["one_text_after_disconnect"]
        return f"{_fmt(one['seconds'], ' s')} ({one['status'] or one['note']})"

    return [
        ("one text, idle: p50 (baseline)", lambda s: _fmt(s["baseline_p50_s"], " s")),
        *_kind_rows("mine"),
        ("mining successes per minute", lambda s: _fmt(s["mine"]["successes_per_min"])),
        *_kind_rows("embed"),
        (
            "max queue gauge: texts / tokens",
            lambda s: f"{_fmt(s['queue']['max_queue_texts'])} / {_fmt(s['queue']['max_queue_tokens'])}",
        ),
        ("probe during load: 200s of requests", lambda s: f"{s['probe']['200']} of {s['probe']['requests']}"),
        (
            "probe during load: p50 / p99 / max",
            lambda s: (
                f"{_fmt(s['probe']['p50_s'], ' s')} / "
                f"{_fmt(s['probe']['p99_s'], ' s')} / {_fmt(s['probe']['max_s'], ' s')}"
            ),
        ),
        ("recovery: one text under 2 x baseline p50 after", recovered),
        (
            "the 10 s after recovery: p50 / max",
            lambda s: f"{_fmt(s['after_recovery_p50_s'], ' s')} / {_fmt(s['after_recovery_max_s'], ' s')}",
        ),
        ("512 texts alone", lambda s: _fmt(s["disconnect"]["large_alone"]["seconds"], " s")),
        ("one text right after a 512-text client left at 1 s", disc),
    ]


def markdown_table(runs: dict[str, dict[str, Any]]) -> str:
    """One column per recorded run (label), one row per figure."""
    labels = list(runs)
    lines = ["| | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for title, cell in _rows():
        lines.append(f"| {title} | " + " | ".join(cell(runs[label]["summary"]) for label in labels) + " |")
    return "\n".join(lines)


def _scenario(plan: Plan) -> str:
    return (
        f"Written by `benchmarks/overload/` (its docstring says how to run it): {plan.clients} clients for "
        f"{plan.seconds:.0f} s, half mining {plan.side} x {plan.side} inline sides, half embedding "
        f"{plan.embed_texts} texts, back to back (a refusal retried after a short pause); a one-text probe every "
        f"{plan.probe_every_s:.0f} s meanwhile; `/metrics` every {plan.poll_every_s} s; the server with "
        f"{THREADS} onnxruntime threads and its default settings otherwise."
    )


def _plan_words(plan: dict[str, Any]) -> str:
    full = Plan(**plan)
    return f"{full.clients} clients x {full.seconds:.0f} s, refusals retried after {full.retry_pause_s} s"


def record(name: str, label: str, entry: dict[str, Any]) -> tuple[Path, Path]:
    """Add ``entry`` under ``label`` to ``results/<name>.json`` and rewrite ``results/<name>.md``'s table."""
    out = RESULTS / f"{name}.json"
    runs = json.loads(out.read_text(encoding="utf-8"))["runs"] if out.exists() else {}
    runs[label] = entry
    out.write_text(json.dumps({"runs": runs}, indent=2) + "\n", encoding="utf-8")
    table = RESULTS / f"{name}.md"
    head = [f"# {name}: overload of the real model", "", _scenario(Plan(**entry.get("plan", {}))), ""]
    commands = [
        f"- **{label}** ({r['when']}, {r['machine']}, served code {r['served_code']['revision']}, "
        f"{_plan_words(r.get('plan', {}))}): `{r['command']}`"
        for label, r in runs.items()
    ]
    # Hand-written notes (from a "## Notes" heading on) survive a rerun.
    kept = table.read_text(encoding="utf-8").partition("\n## Notes")[1:] if table.exists() else ("", "")
    body = "\n".join([*head, markdown_table(runs), "", *commands, ""])
    table.write_text(body + "".join(kept), encoding="utf-8")
    return out, table
