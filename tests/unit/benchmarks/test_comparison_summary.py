"""The comparison's summary on fake evaluations: mean ± sd over seeds, the spread rule, missing runs, plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.alignment.comparison.summarize import Stats, difference, load_runs, metrics, write_summary


def _evaluation(tatoeba: float, f1: float, xnli_unseen: float) -> dict[str, dict[str, float]]:
    return {
        "tatoeba": {"deu-eng": tatoeba + 1, "eng-deu": tatoeba - 1, "mean": tatoeba},
        "bucc2018-de-en": {"f1": f1, "precision": 0.0, "recall": 0.0, "threshold": 1.0},
        # de is a trained language, ar and zh are not: the unseen mean is theirs alone.
        "xnli-test": {"de-en": 90.0, "en-de": 90.0, "ar-en": xnli_unseen, "en-ar": xnli_unseen, "zh-en": xnli_unseen,
                      "en-zh": xnli_unseen, "mean": 50.0},
    }  # fmt: skip


def _write(runs: Path, name: str, evaluation: dict[str, dict[str, float]]) -> None:
    (runs / name).mkdir(parents=True)
    (runs / name / "eval.json").write_text(json.dumps(evaluation), encoding="utf-8")


def test_metrics_of_one_run() -> None:
    found = metrics(_evaluation(90.0, 97.0, 60.0))
    assert found == {"tatoeba": 90.0, "bucc_f1": 97.0, "tatoeba:deu-eng": 91.0, "tatoeba:eng-deu": 89.0,
                     "xnli": 50.0, "xnli_unseen": 60.0}  # fmt: skip


def test_spread_rule() -> None:
    a, b = Stats(mean=91.0, sd=0.3, n=3), Stats(mean=90.0, sd=0.4, n=3)
    # pooled sd = sqrt((0.09 + 0.16) / 2) = 0.354; 1.0 > 2 x 0.354
    assert difference(a, b) == {"delta": 1.0, "pooled_sd": pytest.approx(0.3536, abs=1e-4), "exceeds": True}
    assert difference(Stats(90.5, 0.3, 3), b)["exceeds"] is False
    assert difference(a, Stats(90.0, None, 1))["exceeds"] is None


def test_partial_results_are_summarized_and_the_missing_listed(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _write(runs, "base", _evaluation(90.0, 97.0, 60.0))
    for seed, (tatoeba, f1) in enumerate([(91.0, 96.0), (91.2, 96.2), (90.8, 96.4)], 1):
        _write(runs, f"en_x-s{seed}", _evaluation(tatoeba, f1, 61.0))
    for seed, (tatoeba, f1) in enumerate([(91.1, 97.5), (91.3, 97.7)], 1):
        _write(runs, f"multiway-s{seed}", _evaluation(tatoeba, f1, 62.0))
    (runs / "multiway-s1" / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "loss": 1.0 / s, "losses": {"multiway_contrastive": 0.5 / s}}) + "\n"
                for s in (1, 2, 3)),
        encoding="utf-8",
    )  # fmt: skip
    found, missing = load_runs(runs)
    assert list(found)[:2] == ["base", "en_x-s1"] and "dap-s1" in missing and "multiway-s3" in missing
    out = tmp_path / "results" / "comparison"
    record = write_summary(runs, out)
    en_x, multiway = record["methods"]["en_x"], record["methods"]["multiway"]
    assert en_x["tatoeba"]["n"] == 3 and en_x["tatoeba"]["mean"] == pytest.approx(91.0)
    assert en_x["bucc_f1"]["sd"] == pytest.approx(0.2) and multiway["bucc_f1"]["n"] == 2
    bucc = next(p for p in record["pairs"] if p["metric"] == "bucc_f1")
    assert (bucc["a"], bucc["b"], bucc["exceeds"]) == ("en_x", "multiway", True)
    page = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "| en_x | 3 | 91.00 ± 0.20 | 96.20 ± 0.20 |" in page
    assert "multiway - en_x on BUCC F1: +1.40, which exceeds the seed spread." in page
    assert "missing: dap-s1" in page and "| base | 90.0 | 90.0 |" not in page
    assert (out / "multiway_loss.png").stat().st_size > 0 and not (out / "dap_loss.png").exists()
    assert json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))["missing"][0] == "dap-s1"


def test_an_ablation_is_shown_against_its_method_seed_one(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _write(runs, "base", _evaluation(90.0, 97.0, 60.0))
    _write(runs, "en_x-s1", _evaluation(91.0, 97.5, 61.0))
    _write(runs, "en_x_hard-s1", _evaluation(91.5, 97.25, 61.0))
    for run, scale in (("en_x-s1", 1.0), ("en_x_hard-s1", 2.0)):
        (runs / run / "metrics.jsonl").write_text(
            "".join(json.dumps({"step": s, "loss": scale / s, "losses": {"translation_ranking": scale / s}}) + "\n"
                    for s in (1, 2, 3)),
            encoding="utf-8",
        )  # fmt: skip
    out = tmp_path / "results" / "comparison"
    record = write_summary(runs, out)
    assert record["ablations"]["en_x_hard"]["against"] == "en_x-s1"
    page = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "### en_x_hard-s1 against en_x-s1 (one seed each)" in page
    assert "| Δ | +0.50 | -0.25 | +0.00 | +0.00 |" in page
    assert (out / "en_x_hard-s1_vs_en_x-s1_loss.png").stat().st_size > 0
    assert "en_x_hard-s1" not in record["runs"]  # not one of the seeded methods' runs
