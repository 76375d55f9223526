"""The aligned default: a committed delta applied to the base, exported, gated against the base, promoted.

``publish_default`` publishes the base as ``export_and_publish`` always did, then, given a delta folder
(``training.delta``), applies it to that base, exports the result and publishes it as the next version of the
same model. Both versions are evaluated the same way (the config's Tatoeba and BUCC folders), so the gate
compares like with like: the aligned version must beat the base on the Tatoeba mean and on BUCC F1 and lose at
most ``MAX_DIRECTION_LOSS`` points on any Tatoeba direction. That is the release gate (``modelstore.release``)
with ``aligned_policy``: "beat" is at least +0.01, the manifests' resolution, on those two tasks only. The
gate's numbers are recorded in the aligned manifest as the ``gate`` task. Before the aligned version is
published, a store without ``production`` gets the base pinned as production (``initial``); a passing aligned
version is then released against production. A failing gate publishes nothing (``GateError``) unless the gate is
off, which publishes without promoting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from xalign.export.config import Evaluation
from xalign.export.dual_encoder import DUAL_ENCODER
from xalign.export.dual_encoder_config import ExportConfig
from xalign.export.evaluation import Evaluate, bucc_task_name
from xalign.export.pipeline import Review, export_and_publish
from xalign.modelstore import Manifest, ModelStore
from xalign.modelstore.integrity import sha256_file
from xalign.modelstore.manifest import DataFile
from xalign.modelstore.release import GatePolicy, compare, pin_initial, release
from xalign.training.data.licences import data_licences
from xalign.training.delta import DELTA_FILE, DELTA_MANIFEST, WEIGHTS, DeltaManifest, apply_delta, read_delta

log = logging.getLogger(__name__)

GATE_TASK: Final = "gate"
MAX_DIRECTION_LOSS: Final = 0.5  # Tatoeba points any one direction may lose against the base


class GateError(ValueError):
    """The aligned model does not beat its base (or cannot be compared with it); the message has the numbers."""


@dataclass(frozen=True)
class DefaultResult:
    """The base version, the aligned version (None without a delta or when refused), and whether it is promoted."""

    base: Manifest
    aligned: Manifest | None = None
    promoted: bool = False


def aligned_policy(bucc_pair: str = "de-en") -> GatePolicy:
    """The release gate of the aligned default against its base: Tatoeba and BUCC F1 must rise (by at least
    0.01, the resolution of the recorded numbers, i.e. "> 0"), no direction may lose more than 0.5 points."""
    return GatePolicy(
        min_mean_delta=0.01,
        min_f1_delta=0.01,
        max_direction_loss=MAX_DIRECTION_LOSS,
        tasks=("tatoeba", bucc_task_name(bucc_pair)),
    )


def gate_numbers(base: Evaluation, aligned: Evaluation, bucc_pair: str = "de-en") -> dict[str, float]:
    """The fp32 differences aligned minus base and whether they pass; ``GateError`` if a number is missing.

    Keys: ``passed`` (1.0 or 0.0), ``tatoeba_mean_delta``, ``bucc_f1_delta``, ``worst_direction_delta`` (the
    smallest per-direction difference), ``base_tatoeba_mean``, ``base_bucc_f1`` and ``delta.<direction>``.
    """
    bucc = bucc_task_name(bucc_pair)
    missing = [
        f"{side} {task}"
        for side, ev in (("base", base), ("aligned", aligned))
        for task in ("tatoeba", bucc)
        if task not in ev
    ]
    if missing:
        raise GateError(f"the gate needs Tatoeba and BUCC numbers of both versions; missing: {', '.join(missing)}")
    directions = sorted(key for key in base["tatoeba"] if key != "mean" and key in aligned["tatoeba"])
    if not directions or "mean" not in base["tatoeba"] or "mean" not in aligned["tatoeba"]:
        raise GateError("the gate needs the same Tatoeba directions and means for both versions")
    per_direction = {d: round(aligned["tatoeba"][d] - base["tatoeba"][d], 2) for d in directions}
    numbers = {
        "tatoeba_mean_delta": round(aligned["tatoeba"]["mean"] - base["tatoeba"]["mean"], 2),
        "bucc_f1_delta": round(aligned[bucc]["f1"] - base[bucc]["f1"], 2),
        "worst_direction_delta": min(per_direction.values()),
        "base_tatoeba_mean": base["tatoeba"]["mean"],
        "base_bucc_f1": base[bucc]["f1"],
        **{f"delta.{d}": value for d, value in per_direction.items()},
    }
    passed = compare(base, aligned, aligned_policy(bucc_pair)).passed
    return {"passed": 1.0 if passed else 0.0, **numbers}


def gate_summary(numbers: dict[str, float]) -> str:
    """One line: pass or fail, and the three numbers the gate decides on."""
    verdict = "passes" if numbers["passed"] == 1.0 else "fails"
    return (
        f"the aligned model {verdict} the gate against the base: Tatoeba mean {numbers['tatoeba_mean_delta']:+.2f} "
        f"(needs > 0), BUCC F1 {numbers['bucc_f1_delta']:+.2f} (needs > 0), worst Tatoeba direction "
        f"{numbers['worst_direction_delta']:+.2f} (needs >= -{MAX_DIRECTION_LOSS})"
    )


def aligned_config(base: ExportConfig, applied_dir: Path, delta_dir: Path, delta: DeltaManifest) -> ExportConfig:
    """``base``'s export settings for the applied folder; the source records the delta, its base and data.

    The data files are the delta's two files and the base weights (by sha256, under location-free names, so
    moving the checkout does not change the fingerprint), then the training data. The evaluation the delta
    carries (measured on the PyTorch checkpoint) is kept as ``checkpoint-<task>``.
    """
    provenance = (
        DataFile(path=f"delta/{DELTA_FILE}", sha256=delta.file_sha256),
        DataFile(path=f"delta/{DELTA_MANIFEST}", sha256=sha256_file(Path(delta_dir) / DELTA_MANIFEST)),
        DataFile(path=f"base/{WEIGHTS}", sha256=delta.base.model_sha256),
    )
    return replace(
        base,
        model_dir=applied_dir,
        recipe=delta.recipe_file or "unnamed recipe",
        data_files=provenance + tuple(DataFile(**entry) for entry in delta.data_files),
        steps=delta.step,
        code_revision=delta.code_revision,
        evaluation={f"checkpoint-{task}": metrics for task, metrics in (delta.evaluation or {}).items()},
        licenses=base.licenses + data_licences(entry["path"] for entry in delta.data_files),
    )


def _reviewer(base: Manifest, pair: str, gate: bool) -> Review:
    """The review that adds the gate's numbers to the aligned evaluation, refusing a failure when ``gate``."""

    def review(evaluation: Evaluation) -> Evaluation:
        try:
            numbers = gate_numbers(base.evaluation, evaluation, pair)
        except GateError:
            if gate:
                raise
            log.warning("no gate numbers: Tatoeba or BUCC results are missing")
            return evaluation
        numbers["base_version"] = float(base.version)
        log.info("%s", gate_summary(numbers))
        if gate and numbers["passed"] != 1.0:
            raise GateError(gate_summary(numbers) + "; nothing published")
        return {**evaluation, GATE_TASK: numbers}

    return review


def publish_default(
    config: ExportConfig,
    delta_dir: Path | None = None,
    *,
    applied_dir: Path | None = None,
    gate: bool = True,
    evaluate: Evaluate | None = None,
) -> DefaultResult:
    """Publish the base of ``config``, then the delta applied to it, gated (see the module docstring).

    ``applied_dir`` is where the applied transformers folder goes (default: beside the base, named
    ``<name>-aligned``). ``evaluate`` replaces the Tatoeba/BUCC measurement (tests force numbers with it).
    Idempotent: a rerun with the same inputs publishes nothing and moves no alias.
    """
    base = export_and_publish(config, DUAL_ENCODER, evaluate=evaluate)
    if delta_dir is None:
        return DefaultResult(base)
    delta = read_delta(delta_dir)
    target = applied_dir if applied_dir is not None else Path(config.model_dir).parent / f"{config.name}-aligned"
    applied = apply_delta(Path(config.model_dir), delta_dir, target)
    # Pinned before the aligned version lands: a store without production would serve it as the latest, ungated.
    pin_initial(ModelStore(config.store), base.name, base.version)
    review = _reviewer(base, config.bucc_pair, gate)
    aligned_export = aligned_config(config, applied, delta_dir, delta)
    aligned = export_and_publish(aligned_export, DUAL_ENCODER, evaluate=evaluate, review=review)
    numbers = aligned.evaluation.get(GATE_TASK)
    if numbers is not None and numbers.get("passed") == 1.0:
        outcome = release(
            ModelStore(config.store), aligned.name, aligned.version, policy=aligned_policy(config.bucc_pair)
        )
        log.info("%s", outcome.summary())
        return DefaultResult(base, aligned, promoted=outcome.promoted)
    if gate:  # an earlier ungated run published it; it still does not pass
        detail = gate_summary(numbers) if numbers is not None else "it carries no gate numbers"
        raise GateError(f"{aligned.name}:{aligned.version} is not promoted: {detail}")
    return DefaultResult(base, aligned, promoted=False)
