"""The release policy: when a published version may become ``production``; used by every path that promotes.

``make model`` (``export.aligned``), ``xalign-export retrain`` (``export.retrain``) and ``xalign-store promote``
all call ``release``. A candidate is compared with the version ``production`` names, on the evaluation tasks both
manifests carry (``compare``):

- a Tatoeba-like task (its metrics have a ``mean`` and per-direction keys such as ``deu-eng``): the mean may not
  drop below ``min_mean_delta`` and no shared direction may lose more than ``max_direction_loss`` points;
- any other task with an ``f1`` (BUCC: ``bucc2018-<pair>``): F1 may not drop below ``min_f1_delta``;
- any other task with an ``accuracy`` or a ``mean``: that number may not drop below ``min_mean_delta``;
- other metrics are shown in the table but decide nothing; ``checkpoint-*`` tasks (measured on the PyTorch
  checkpoint during training, on whatever dev set that run had) and ``gate`` (bookkeeping) are not compared.

Differences are rounded to 0.01 points, as the manifests' numbers are. A candidate passes when at least one
number decided and every deciding number passed. No production yet: the candidate becomes production as
``initial``. No number in common: not promoted, and the message says to evaluate or force. A failing candidate
stays published and unpromoted unless ``force``; a forced promotion is recorded as such. ``rollback`` is never
gated: it returns to a version production held before. Only ``production`` is gated; other aliases just move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from xalign.modelstore.aliases import DEFAULT_ALIAS, rollback_alias, set_alias
from xalign.modelstore.manifest import Manifest
from xalign.modelstore.refs import ModelRef
from xalign.modelstore.store import ModelStore

Evaluation = dict[str, dict[str, float]]
SKIPPED_PREFIXES: Final = ("checkpoint-",)
SKIPPED_TASKS: Final = frozenset({"gate"})
_EPS: Final = 1e-9


@dataclass(frozen=True)
class GatePolicy:
    """Thresholds of the gate, in evaluation points (percent); ``tasks`` limits which shared tasks decide."""

    min_mean_delta: float = 0.0
    min_f1_delta: float = 0.0
    max_direction_loss: float = 0.5
    tasks: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Row:
    """One compared number; ``ok`` is None for a number shown but not deciding."""

    task: str
    metric: str
    production: float
    candidate: float
    delta: float
    rule: str
    ok: bool | None


@dataclass(frozen=True)
class GateResult:
    """The comparison of a candidate with production."""

    rows: tuple[Row, ...]

    @property
    def compared(self) -> bool:
        """Whether at least one number decided."""
        return any(row.ok is not None for row in self.rows)

    @property
    def passed(self) -> bool:
        """Compared, and every deciding number passed."""
        return self.compared and all(row.ok is not False for row in self.rows)

    @property
    def verdict(self) -> str:
        """``passed``, ``failed`` or ``not compared``."""
        if not self.compared:
            return "not compared"
        return "passed" if self.passed else "failed"

    def failures(self) -> list[Row]:
        """The deciding numbers that failed."""
        return [row for row in self.rows if row.ok is False]

    def table(self) -> str:
        """The differences as an aligned text table."""
        header = f"{'task':<22} {'metric':<12} {'production':>10} {'candidate':>10} {'delta':>8}  {'rule':<10} result"
        lines = [header]
        for r in self.rows:
            result = "-" if r.ok is None else ("ok" if r.ok else "FAIL")
            lines.append(
                f"{r.task:<22} {r.metric:<12} {r.production:>10.2f} {r.candidate:>10.2f} {r.delta:>+8.2f}  "
                f"{r.rule:<10} {result}"
            )
        return "\n".join(lines)


def compare(production: Evaluation, candidate: Evaluation, policy: GatePolicy | None = None) -> GateResult:
    """Compare the evaluations two manifests carry under ``policy`` (see the module docstring)."""
    policy = policy or GatePolicy()
    rows: list[Row] = []
    for task in sorted(set(production) & set(candidate)):
        if task in SKIPPED_TASKS or task.startswith(SKIPPED_PREFIXES):
            continue
        if policy.tasks is not None and task not in policy.tasks:
            continue
        rows.extend(_task_rows(task, production[task], candidate[task], policy))
    return GateResult(tuple(rows))


def _task_rows(task: str, old: dict[str, float], new: dict[str, float], policy: GatePolicy) -> list[Row]:
    shared = sorted(set(old) & set(new))
    directions = [m for m in shared if "-" in m]
    if "mean" in shared and directions:
        rules = {"mean": policy.min_mean_delta, **dict.fromkeys(directions, -policy.max_direction_loss)}
    elif "f1" in shared:
        rules = {"f1": policy.min_f1_delta}
    else:
        decider = next((m for m in ("accuracy", "mean") if m in shared), None)
        rules = {decider: policy.min_mean_delta} if decider else {}
    rows = []
    for metric in sorted(shared, key=lambda m: (m not in rules, m != "mean", m)):
        delta = round(new[metric] - old[metric], 2)
        floor = rules.get(metric)
        ok = None if floor is None else delta >= floor - _EPS
        rule = "" if floor is None else f">= {floor:+.2f}"
        rows.append(Row(task, metric, old[metric], new[metric], delta, rule, ok))
    return rows


ReleaseAction = Literal["initial", "promote", "force", "unchanged", "refused"]


@dataclass(frozen=True)
class Release:
    """What ``release`` did: ``previous`` is what production named before (None: nothing)."""

    name: str
    version: int
    previous: int | None
    action: ReleaseAction
    gate: GateResult | None = None

    @property
    def promoted(self) -> bool:
        """Whether production names the candidate now."""
        return self.action != "refused"

    def summary(self) -> str:
        """One line for people."""
        ref = f"{self.name}:{self.version}"
        if self.action == "unchanged":
            return f"{ref} is production already"
        if self.action == "initial":
            return f"{ref} is production (initial: no production before)"
        gate = self.gate.verdict if self.gate else "not compared"
        if self.action == "refused":
            return f"{ref} is not promoted: the gate against {self.name}:{self.previous} {gate}" + _hint(self.gate)
        forced = " (forced)" if self.action == "force" else ""
        return f"{ref} is production{forced}: the gate against {self.name}:{self.previous} {gate}"


def _hint(gate: GateResult | None) -> str:
    if gate is None or not gate.compared:
        return (
            "; the two versions carry no evaluation in common: evaluate the candidate like production "
            "(e.g. --tatoeba-dir, --bucc-dir) or promote it with --force"
        )
    worst = ", ".join(f"{r.task} {r.metric} {r.delta:+.2f} (needs {r.rule})" for r in gate.failures())
    return f" ({worst}); --force promotes it anyway"


def release(
    store: ModelStore,
    name: str,
    version: int,
    *,
    policy: GatePolicy | None = None,
    force: bool = False,
    actor: str | None = None,
) -> Release:
    """Promote ``name:version`` to production if it passes the gate against production (or ``force``)."""
    candidate = store.manifest(ModelRef(name, version=version))
    previous = store.aliases(name).get(DEFAULT_ALIAS)
    if previous == version:
        return Release(name, version, previous, "unchanged")
    if previous is None:
        _move(store, candidate, None, action="initial", gate="initial", detail="no production before", actor=actor)
        return Release(name, version, None, "initial")
    baseline = store.manifest(ModelRef(name, version=previous))
    gate = compare(baseline.evaluation, candidate.evaluation, policy)
    if not gate.passed and not force:
        return Release(name, version, previous, "refused", gate)
    action: Literal["promote", "force"] = "promote" if gate.passed else "force"
    verdict = gate.verdict if gate.passed else f"{gate.verdict} (forced)"
    detail = "; ".join(f"{r.task} {r.metric} {r.delta:+.2f}" for r in gate.rows if r.ok is not None)
    _move(store, candidate, previous, action=action, gate=verdict, detail=detail, actor=actor)
    return Release(name, version, previous, action, gate)


def pin_initial(store: ModelStore, name: str, version: int, actor: str | None = None) -> bool:
    """Make ``version`` production if there is no production yet (before a candidate is published, so that the
    candidate is gated against what was served, and a rollback has somewhere to go); True if it did."""
    if DEFAULT_ALIAS in store.aliases(name):
        return False
    candidate = store.manifest(ModelRef(name, version=version))
    detail = "served before any production was set"
    _move(store, candidate, None, action="initial", gate="initial", detail=detail, actor=actor)
    return True


def rollback(store: ModelStore, name: str, alias: str = DEFAULT_ALIAS, actor: str | None = None) -> int:
    """Move ``alias`` back to the version it held before (not gated); return that version."""
    store.versions(name)
    return rollback_alias(store.root / name, alias, actor)


def _move(
    store: ModelStore,
    candidate: Manifest,
    previous: int | None,
    *,
    action: Literal["initial", "promote", "force"],
    gate: str,
    detail: str,
    actor: str | None = None,
) -> None:
    # expect=previous: a concurrent mover between our decision and the move fails the release, never overrides.
    set_alias(
        store.root / candidate.name,
        DEFAULT_ALIAS,
        candidate.version,
        action=action,
        actor=actor,
        expect=previous,
        gate=gate,
        detail=detail,
    )
