"""The SENSIA report's verdict and tables on a hand-made results dictionary."""

from __future__ import annotations

from typing import Any

from benchmarks.backpack.report import render_markdown, verdict

RUNS = ("source", "sensia", "joint", "target_1x", "target_2x", "target_4x")


def _scores(overlap: float, corr: float) -> dict[str, Any]:
    return {"pairs": 50, "k": 10, "knn_overlap": overlap, "distance_correlation": corr, "procrustes_residual": 0.2}


def results(sensia_ppl: float, english_overlap: float) -> dict[str, Any]:
    ppl = {"source": 900.0, "sensia": sensia_ppl, "joint": 60.0, "target_1x": 80.0, "target_2x": 70.0,
           "target_4x": 50.0}  # fmt: skip
    models: dict[str, Any] = {}
    for run in RUNS:
        models[run] = {"ppl": ppl[run], "en_ppl": 40.0 if run in ("source", "sensia", "joint") else None,
                       "retrieval": {"en_x": 0.5, "x_en": 0.4}, "target_lines": 1500,
                       "geometry": {"cross": _scores(0.2, 0.3)}}  # fmt: skip
    models["sensia"]["geometry"]["english"] = _scores(english_overlap, 0.9)
    models["joint"]["geometry"]["english"] = _scores(0.7, 0.9)
    entry = {"pairs": 50, "knn_chance": 0.2, "models": models}
    return {"source": {"en_val_ppl": 40.0}, "langs": {"de": entry}}


def test_the_verdict_uses_the_stated_thresholds() -> None:
    held = verdict(results(sensia_ppl=52.0, english_overlap=0.6))
    assert "**held**" in held[0]
    assert "**preserved**" in held[2]
    failed = verdict(results(sensia_ppl=53.0, english_overlap=0.4))  # 6 % above target_4x; overlap < 0.5
    assert "**did not hold**" in failed[0]
    assert "**not preserved**" in failed[2]


def test_the_markdown_has_every_table() -> None:
    text = render_markdown(results(50.0, 0.6), ["setup line"], ["cmd --flag"])
    assert "setup line" in text
    assert "cmd --flag" in text
    assert "| SENSIA (from source) | 1500 | 50.0 | 40.0 |" in text
    assert "| de | SENSIA (from source) | 50 | 0.600 | 0.200 | 0.900 | 0.200 |" in text
    assert "n/a" in text  # target-only models have no English perplexity
