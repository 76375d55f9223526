"""The data curve's summary and verdict, from whatever evaluation JSONs exist (``curve_runner``): partial
results give a partial report.

Per language X, perplexity on Multi30k val.X over seeds (mean, sample sd) of the target-only runs at N, 2N, 4N
sentences and of SENSIA at N pairs. SENSIA *beats* a target-only point when the two mean +- sd intervals do
not overlap and SENSIA is lower, *loses* when they do not overlap and SENSIA is higher, and *ties* otherwise
(with one seed there is no spread: the means decide, and the report says so). The claim ("SENSIA with N
pairs is competitive with target-only models seeing 2-4x more target text"), per language:

- **holds**: SENSIA at N is not worse (beats or ties) than target-only at 4N;
- **holds partly**: not worse than target-only at 2N, but worse than at 4N;
- **fails**: worse than target-only at 2N.

Over the languages: holds when it holds for all, fails when it fails for all, holds partly otherwise.
``equivalent_rows`` reads the target data SENSIA is worth off the target-only curve (log-linear between
points).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from benchmarks.backpack.curve_plan import DEFAULT_SIZE, LANGS, PROBE_SIZE, N

Outcome = Literal["beats", "ties", "loses"]


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (0 for one value) and count of one point of the curve."""

    mean: float
    sd: float
    n: int


def stat(values: Sequence[float]) -> Stat | None:
    """The ``Stat`` of ``values`` (None when empty)."""
    if not values:
        return None
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return Stat(statistics.fmean(values), sd, len(values))


def compare(sensia: Stat, target: Stat) -> Outcome:
    """SENSIA's perplexity against a target-only point, beyond the seed spread (lower is better)."""
    if sensia.mean + sensia.sd < target.mean - target.sd:
        return "beats"
    if sensia.mean - sensia.sd > target.mean + target.sd:
        return "loses"
    return "ties"


def curve_points(evals: Sequence[Mapping[str, Any]], lang: str, metric: Any = None) -> dict[str, dict[int, Stat]]:
    """``{"target": {rows: Stat}, "sensia": {rows: Stat}, "init_lm": {rows: Stat}}`` of the default-size runs
    of ``lang``; ``metric`` picks the value from an evaluation (default: its perplexity)."""
    pick = metric or (lambda e: e["ppl"])
    points: dict[str, dict[int, Stat]] = {"target": {}, "sensia": {}, "init_lm": {}}
    for kind, found in points.items():
        mine = [e for e in evals if e["kind"] == kind and e["lang"] == lang and e["size"] == DEFAULT_SIZE]
        for rows in sorted({e["rows"] for e in mine}):
            value = stat([pick(e) for e in mine if e["rows"] == rows])
            if value is not None:
                found[rows] = value
    return points


def equivalent_rows(sensia: float, target: Mapping[int, Stat]) -> str:
    """The target-only data SENSIA's mean perplexity matches, read off the curve (log-linear interpolation)."""
    rows = sorted(target)
    if len(rows) < 2:
        return "n/a"
    ppl = [target[r].mean for r in rows]
    if sensia > ppl[0]:
        return f"< {rows[0]:,}"
    if sensia < ppl[-1]:
        return f"> {rows[-1]:,}"
    for (r0, p0), (r1, p1) in zip(zip(rows, ppl, strict=True), zip(rows[1:], ppl[1:], strict=True), strict=False):
        if p1 <= sensia <= p0 and p0 != p1:
            share = (math.log(p0) - math.log(sensia)) / (math.log(p0) - math.log(p1))
            return f"{round(r0 * (r1 / r0) ** share):,}"
    return "n/a"


def language_verdict(points: Mapping[str, Mapping[int, Stat]]) -> dict[str, Any]:
    """The claim for one language: outcome against each target-only point, and the verdict (or why none)."""
    sensia = points["sensia"].get(N)
    target = points["target"]
    outcomes = {rows: compare(sensia, t) for rows, t in target.items()} if sensia else {}
    verdict = "incomplete"
    if sensia and 2 * N in outcomes and 4 * N in outcomes:
        partly = "holds partly" if outcomes[2 * N] != "loses" else "fails"
        verdict = "holds" if outcomes[4 * N] != "loses" else partly
    seeds = min([sensia.n if sensia else 0, *(t.n for t in target.values())])
    return {
        "verdict": verdict,
        "outcomes": {str(rows): outcome for rows, outcome in outcomes.items()},
        "equivalent_rows": equivalent_rows(sensia.mean, target) if sensia else "n/a",
        "min_seeds": seeds,
    }


def effect(with_it: Stat | None, without: Stat | None) -> dict[str, Any] | None:
    """The perplexity change one ingredient makes (``with_it`` minus ``without``) and its ``compare`` outcome."""
    if with_it is None or without is None:
        return None
    return {"delta": with_it.mean - without.mean, "outcome": compare(with_it, without)}


def control_effects(points: Mapping[str, Mapping[int, Stat]]) -> dict[str, Any]:
    """At N target sentences: what the English init does (init_lm against target-only) and what SENSIA's source
    LM and alignment losses do on top of it (SENSIA against init_lm), in perplexity."""
    init_lm = points["init_lm"].get(N)
    return {"init": effect(init_lm, points["target"].get(N)), "losses": effect(points["sensia"].get(N), init_lm)}


def overall(verdicts: Mapping[str, Mapping[str, Any]]) -> str:
    """Holds / fails when every language says so, holds partly when they differ, incomplete otherwise."""
    found = [v["verdict"] for v in verdicts.values()]
    if not found or "incomplete" in found:
        return "incomplete"
    if all(v == "holds" for v in found):
        return "holds"
    return "fails" if all(v == "fails" for v in found) else "holds partly"


def summarize(evals: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per language the perplexity and retrieval points and the verdict; the overall verdict; the size probe."""
    langs: dict[str, Any] = {}
    for lang in LANGS:
        ppl = curve_points(evals, lang)
        en_x = curve_points(evals, lang, lambda e: e["retrieval"]["en_x"])
        x_en = curve_points(evals, lang, lambda e: e["retrieval"]["x_en"])
        langs[lang] = {
            "ppl": _plain(ppl),
            "retrieval_en_x": _plain(en_x),
            "retrieval_x_en": _plain(x_en),
            **language_verdict(ppl),
            "control": control_effects(ppl),
        }
    return {"langs": langs, "overall": overall(langs), "probe": size_probe(evals)}


def _plain(points: Mapping[str, Mapping[int, Stat]]) -> dict[str, dict[str, dict[str, float]]]:
    return {kind: {str(rows): asdict(s) for rows, s in found.items()} for kind, found in points.items()}


def size_probe(evals: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """SENSIA de seed 0 at the default and the probe size, side by side, and whether the larger reads better
    senses (higher cross-lingual k-NN overlap and distance correlation of word senses, ``geometry.py``)."""
    found = {e["size"]: e for e in evals if e["kind"] == "sensia" and e["lang"] == "de" and e["seed"] == 0}
    if DEFAULT_SIZE not in found or PROBE_SIZE not in found:
        return None
    small, large = found[DEFAULT_SIZE], found[PROBE_SIZE]
    cross_s, cross_l = small["geometry"]["cross"], large["geometry"]["cross"]
    better = all(cross_l[k] > cross_s[k] for k in ("knn_overlap", "distance_correlation"))
    return {"sizes": {DEFAULT_SIZE: _probe_row(small), PROBE_SIZE: _probe_row(large)}, "larger_reads_better": better}


def _probe_row(result: Mapping[str, Any]) -> dict[str, float]:
    cross, english = result["geometry"]["cross"], result["geometry"]["english"]
    return {
        "ppl": result["ppl"], "en_ppl": result["en_ppl"], "en_x": result["retrieval"]["en_x"],
        "x_en": result["retrieval"]["x_en"], "cross_knn_overlap": cross["knn_overlap"],
        "cross_distance_correlation": cross["distance_correlation"],
        "english_knn_overlap": english["knn_overlap"],
    }  # fmt: skip
