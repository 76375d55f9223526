"""The release gate: the rule, and what a release does to production and its history."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_specs import make_files, make_spec, scores

from xalign.modelstore import ModelStore
from xalign.modelstore.release import GatePolicy, compare, pin_initial, release, rollback

BASE = scores(50.0, 50.0, 50.0, 40.0)


def _publish(store: ModelStore, tmp_path: Path, evaluation: dict[str, dict[str, float]]) -> int:
    n = len(list(tmp_path.glob("src*")))
    return store.publish("m", make_spec(evaluation=evaluation), make_files(tmp_path / f"src{n}", b"%d" % n)).version


@pytest.mark.parametrize(
    ("candidate", "passed"),
    [
        (scores(50.0, 50.5, 49.5, 40.0), True),  # equal mean and F1, a direction exactly -0.5: passes
        (scores(49.99, 50.0, 49.98, 45.0), False),  # mean 0.01 lower
        (scores(51.0, 52.5, 49.49, 45.0), False),  # one direction 0.51 down
        (scores(51.0, 51.0, 51.0, 39.99), False),  # BUCC F1 lower
    ],
)
def test_gate_rule(candidate: dict[str, dict[str, float]], passed: bool) -> None:
    result = compare(BASE, candidate)
    assert result.passed is passed
    assert result.compared


def test_thresholds_are_configurable_and_other_tasks_count_by_their_score() -> None:
    better = scores(50.01, 50.01, 50.01, 40.01)
    assert not compare(BASE, better, GatePolicy(min_mean_delta=0.02)).passed
    assert compare(BASE, scores(50.0, 51.0, 49.0, 40.0), GatePolicy(max_direction_loss=1.0)).passed
    # A task both carry with an accuracy decides; checkpoint-* and gate never do; unknown metrics are shown only.
    extra = {"xnli": {"accuracy": 70.0, "loss": 1.0}, "checkpoint-tatoeba": {"mean": 90.0}, "gate": {"passed": 1.0}}
    worse = {"xnli": {"accuracy": 69.0, "loss": 0.5}, "checkpoint-tatoeba": {"mean": 10.0}, "gate": {"passed": 0.0}}
    result = compare({**BASE, **extra}, {**BASE, **worse})
    assert [(r.task, r.metric, r.ok) for r in result.failures()] == [("xnli", "accuracy", False)]
    assert {r.task for r in result.rows} == {"tatoeba", "bucc2018-de-en", "xnli"}
    assert ("xnli", "loss", None) in [(r.task, r.metric, r.ok) for r in result.rows]
    # Restricted to named tasks, the xnli loss no longer decides.
    assert compare({**BASE, **extra}, {**BASE, **worse}, GatePolicy(tasks=("tatoeba",))).passed
    assert not compare({"x": {"loss": 1.0}}, {"x": {"loss": 0.0}}).compared


def test_first_release_is_initial_then_gated(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    v1 = _publish(store, tmp_path, BASE)
    first = release(store, "m", v1, actor="ci")
    assert (first.action, first.promoted) == ("initial", True)
    v2 = _publish(store, tmp_path, scores(49.0, 49.0, 49.0, 40.0))
    refused = release(store, "m", v2, actor="ci")
    assert not refused.promoted and refused.action == "refused"
    assert "tatoeba mean -1.00 (needs >= +0.00)" in refused.summary()
    assert store.aliases("m") == {"production": v1}
    forced = release(store, "m", v2, force=True, actor="ops@box")
    assert forced.action == "force" and store.aliases("m") == {"production": v2}
    assert release(store, "m", v2).action == "unchanged"
    events = store.history("m")
    assert [(e.action, e.from_version, e.to_version, e.actor, e.gate) for e in events] == [
        ("initial", None, v1, "ci", "initial"),
        ("force", v1, v2, "ops@box", "failed (forced)"),
    ]
    assert "tatoeba mean -1.00" in events[1].detail


def test_no_common_evaluation_is_refused_with_a_hint(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    release(store, "m", _publish(store, tmp_path, BASE))
    result = release(store, "m", _publish(store, tmp_path, {"checkpoint-tatoeba": {"mean": 99.0}}))
    assert not result.promoted and result.gate is not None and not result.gate.compared
    assert "--tatoeba-dir" in result.summary() and "--force" in result.summary()


def test_rollback_is_not_gated_and_recorded(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    v1 = _publish(store, tmp_path, scores(10.0, 10.0, 10.0, 10.0))
    assert pin_initial(store, "m", v1) and not pin_initial(store, "m", v1)
    v2 = _publish(store, tmp_path, BASE)
    assert release(store, "m", v2).action == "promote"
    assert rollback(store, "m", actor="oncall") == v1  # v1 is far worse: a rollback does not care
    last = store.history("m")[-1]
    assert (last.action, last.from_version, last.to_version, last.actor, last.gate) == (
        "rollback",
        v2,
        v1,
        "oncall",
        "not gated",
    )
    assert store.aliases("m") == {"production": v1}
