"""Evaluation reports: a markdown page for people and the manifest's ``evaluation`` dict for the store.

The dict has the shape of ``modelstore.manifest.ModelSpec.evaluation`` (``{task: {metric: value}}``):

* ``"tatoeba"`` → ``{"deu-eng": 98.1, "eng-deu": 97.9, …, "mean": …}``: accuracy in percent per
  direction (``xxx-eng`` means xxx sentences retrieving English ones), and the mean of all directions;
* ``"bucc2018-de-en"`` → ``{"f1", "precision", "recall"}`` in percent and the chosen margin ``"threshold"``;
* ``"xnli-test"`` → ``{"ar-en": …, "en-ar": …, …, "mean": …}``: retrieval accuracy against English on the
  XNLI sentences of that split (``xnli_retrieval.py``), keyed as Tatoeba's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xalign.training.evaluate.bucc import BuccResult
from xalign.training.evaluate.tatoeba import TatoebaResult

Evaluation = dict[str, dict[str, float]]


@dataclass(frozen=True)
class EvalReport:
    """Everything one ``xalign-train eval`` run measured for one model."""

    model: str
    tatoeba: list[TatoebaResult] = field(default_factory=list)
    bucc: dict[str, BuccResult] = field(default_factory=dict)  # by language pair, e.g. "de-en"
    xnli: dict[str, list[TatoebaResult]] = field(default_factory=dict)  # by split, e.g. "test"
    notes: list[str] = field(default_factory=list)


def tatoeba_evaluation(results: Sequence[TatoebaResult], pivot: str = "eng") -> dict[str, float]:
    """``{"deu-eng": acc, "eng-deu": acc, …, "mean": mean of every direction}`` in percent."""
    metrics: dict[str, float] = {}
    for r in results:
        metrics[f"{r.lang}-{pivot}"] = round(r.to_eng, 2)
        metrics[f"{pivot}-{r.lang}"] = round(r.from_eng, 2)
    if results:
        metrics["mean"] = round(sum(r.mean for r in results) / len(results), 2)
    return metrics


def bucc_evaluation(result: BuccResult) -> dict[str, float]:
    """``{"f1", "precision", "recall"}`` in percent and the margin ``"threshold"``."""
    return {
        "f1": round(result.f1, 2),
        "precision": round(result.precision, 2),
        "recall": round(result.recall, 2),
        "threshold": round(result.threshold, 6),
    }


def evaluation_dict(report: EvalReport) -> Evaluation:
    """The manifest's ``evaluation`` field for ``report``; tasks that were not run are absent."""
    evaluation: Evaluation = {}
    if report.tatoeba:
        evaluation["tatoeba"] = tatoeba_evaluation(report.tatoeba)
    for pair, result in report.bucc.items():
        evaluation[f"bucc2018-{pair}"] = bucc_evaluation(result)
    for split, results in report.xnli.items():
        evaluation[f"xnli-{split}"] = tatoeba_evaluation(results, pivot="en")
    return evaluation


def tatoeba_table(results: Sequence[TatoebaResult], pivot: str = "eng") -> str:
    """Markdown table: one row per language (accuracy both ways, their mean, error rates) and a mean row."""
    to, back = f"xxx→{pivot}", f"{pivot}→xxx"
    lines = [
        f"| language | pairs | {to} acc % | {back} acc % | mean acc % | {to} err % | {back} err % |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.lang} | {r.n} | {r.to_eng:.2f} | {r.from_eng:.2f} | {r.mean:.2f} "
            f"| {r.to_eng_error:.2f} | {r.from_eng_error:.2f} |"
        )
    if results:
        count = len(results)
        to_eng = sum(r.to_eng for r in results) / count
        from_eng = sum(r.from_eng for r in results) / count
        lines.append(
            f"| **mean** | {sum(r.n for r in results)} | {to_eng:.2f} | {from_eng:.2f} "
            f"| {(to_eng + from_eng) / 2:.2f} | {100 - to_eng:.2f} | {100 - from_eng:.2f} |"
        )
    return "\n".join(lines) + "\n"


def bucc_table(results: Mapping[str, BuccResult]) -> str:
    """Markdown table: one row per language pair with precision, recall, F1, threshold and counts."""
    lines = [
        "| pair | precision % | recall % | F1 % | threshold | gold | extracted | correct |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for pair, r in results.items():
        lines.append(
            f"| {pair} | {r.precision:.2f} | {r.recall:.2f} | {r.f1:.2f} | {r.threshold:.4f} "
            f"| {r.gold} | {r.extracted} | {r.correct} |"
        )
    return "\n".join(lines) + "\n"


def render_markdown(report: EvalReport) -> str:
    """The whole report as a markdown page: a heading, then a section per task that was run."""
    parts = [f"# Evaluation of {report.model}\n"]
    if report.tatoeba:
        parts.append("## Tatoeba (1-NN cosine retrieval)\n\n" + tatoeba_table(report.tatoeba))
    if report.bucc:
        parts.append(
            "## BUCC 2018 (ratio margin, k=4, max retrieval, best threshold on the gold)\n\n" + bucc_table(report.bucc)
        )
    for split, results in report.xnli.items():
        parts.append(f"## XNLI {split} (1-NN cosine retrieval against English)\n\n" + tatoeba_table(results, "en"))
    if report.notes:
        parts.append("## Notes\n\n" + "".join(f"- {note}\n" for note in report.notes))
    return "\n".join(parts)


def write_json(path: Path, evaluation: Evaluation) -> None:
    """Write ``evaluation`` as indented JSON (UTF-8, trailing newline)."""
    path.write_text(json.dumps(evaluation, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
