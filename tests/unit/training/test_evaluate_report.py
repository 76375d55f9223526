"""Report shapes: the markdown tables and the manifest's ``evaluation`` dict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from xalign.modelstore.manifest import ModelSpec
from xalign.training.evaluate.bucc import BuccResult
from xalign.training.evaluate.report import EvalReport, evaluation_dict, render_markdown, tatoeba_table, write_json
from xalign.training.evaluate.tatoeba import TatoebaResult

REPORT = EvalReport(
    model="tiny-e5",
    tatoeba=[
        TatoebaResult(lang="deu", n=1000, to_eng=98.1, from_eng=97.9),
        TatoebaResult(lang="fra", n=1000, to_eng=95.0, from_eng=94.0),
    ],
    bucc={
        "de-en": BuccResult(
            precision=95.5, recall=93.25, f1=94.36, threshold=1.0987654321, gold=1038, extracted=1013, correct=968
        )
    },
    notes=["capped"],
)


def test_evaluation_dict_has_the_manifest_shape() -> None:
    evaluation = evaluation_dict(REPORT)
    assert evaluation == {
        "tatoeba": {"deu-eng": 98.1, "eng-deu": 97.9, "fra-eng": 95.0, "eng-fra": 94.0, "mean": 96.25},
        "bucc2018-de-en": {"f1": 94.36, "precision": 95.5, "recall": 93.25, "threshold": 1.098765},
    }
    # The very type of ModelSpec.evaluation accepts it unchanged.
    field_type = ModelSpec.model_fields["evaluation"].annotation
    assert field_type is not None
    assert TypeAdapter(field_type).validate_python(evaluation) == evaluation


def test_tasks_not_run_are_absent() -> None:
    assert evaluation_dict(EvalReport(model="m")) == {}
    only_bucc = evaluation_dict(EvalReport(model="m", bucc=REPORT.bucc))
    assert list(only_bucc) == ["bucc2018-de-en"]


def test_tatoeba_table_rows_and_mean() -> None:
    table = tatoeba_table(REPORT.tatoeba).splitlines()
    assert table[0].startswith("| language | pairs | xxx→eng acc % | eng→xxx acc % | mean acc %")
    assert table[2] == "| deu | 1000 | 98.10 | 97.90 | 98.00 | 1.90 | 2.10 |"
    assert table[3] == "| fra | 1000 | 95.00 | 94.00 | 94.50 | 5.00 | 6.00 |"
    assert table[4] == "| **mean** | 2000 | 96.55 | 95.95 | 96.25 | 3.45 | 4.05 |"
    assert all(line.count("|") == 8 for line in table)


def test_markdown_page_has_every_section() -> None:
    page = render_markdown(REPORT)
    assert page.startswith("# Evaluation of tiny-e5\n")
    assert "## Tatoeba" in page and "## BUCC 2018" in page and "- capped" in page
    assert "| de-en | 95.50 | 93.25 | 94.36 | 1.0988 | 1038 | 1013 | 968 |" in page


def test_write_json_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "eval.json"
    write_json(path, evaluation_dict(REPORT))
    assert json.loads(path.read_text(encoding="utf-8")) == evaluation_dict(REPORT)
    assert path.read_text(encoding="utf-8").endswith("}\n")


def test_error_rates_complement_accuracy() -> None:
    r = REPORT.tatoeba[0]
    assert r.to_eng_error == pytest.approx(1.9) and r.from_eng_error == pytest.approx(2.1)
