"""``xalign-export``: export a model to ONNX, check parity, publish it to a model store.

Every ``ExportConfig`` field is an option of ``xalign-export onnx`` named after it
(``model_dir`` → ``--model-dir``; the parser is ``export/cli_parser.py``). ``xalign-export default`` publishes
the default model, and with ``--delta`` the aligned default built on it (``export/aligned.py``).
``xalign-export retrain`` trains a recipe and publishes the result as the next version (``export/retrain.py``);
``xalign-export backpack`` publishes a Backpack checkpoint (``export/backpack.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from xalign.export.aligned import DefaultResult, gate_summary, publish_default
from xalign.export.backpack import BACKPACK, BackpackExportConfig
from xalign.export.backpack_provenance import backpack_config
from xalign.export.cli_parser import build_parser
from xalign.export.default_model import default_config
from xalign.export.dual_encoder import DUAL_ENCODER
from xalign.export.dual_encoder_config import ExportConfig
from xalign.export.parity import ParityError
from xalign.export.pipeline import export_and_publish
from xalign.export.retrain import RetrainJob, RetrainResult, retrain
from xalign.modelstore import Manifest, StoreError
from xalign.modelstore.cli import policy_from_args, print_release
from xalign.modelstore.integrity import sha256_file
from xalign.modelstore.manifest import DataFile
from xalign.training.delta import read_delta
from xalign.training.recipes.loader import Overrides

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")


def parse_data_file(spec: str) -> DataFile:
    """``PATH=SHA256`` as given, or ``PATH`` with the sha256 of the file."""
    path, sep, sha = spec.rpartition("=")
    if sep and _SHA256.fullmatch(sha):
        return DataFile(path=path, sha256=sha)
    if not Path(spec).is_file():
        raise ValueError(f"data file {spec!r}: not a file and not PATH=SHA256")
    return DataFile(path=spec, sha256=sha256_file(Path(spec)))


def read_evaluation(path: Path) -> dict[str, dict[str, float]]:
    """Read ``{"task": {"metric": number}}`` from a JSON file."""
    data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    ok = isinstance(data, dict) and all(
        isinstance(metrics, dict) and all(isinstance(v, int | float) for v in metrics.values())
        for metrics in data.values()
    )
    if not ok:
        raise ValueError(f'{path}: evaluation must be {{"task": {{"metric": number}}}}')
    return {str(task): {str(k): float(v) for k, v in metrics.items()} for task, metrics in data.items()}


# How an ``onnx`` option becomes its ``ExportConfig`` field where the parsed value is not the field's value
# (lists become tuples otherwise).
_FIELD_VALUES: dict[str, Callable[[Any], Any]] = {
    "variants": lambda names: tuple(dict.fromkeys(names)),
    "data_files": lambda specs: tuple(parse_data_file(spec) for spec in specs),
    "evaluation": lambda path: read_evaluation(path) if path else {},
    "bucc_max": lambda limit: limit or None,  # 0: the whole sample
    "text_prefixes": lambda specs: tuple(parse_text_prefix(spec) for spec in specs),
}


def parse_text_prefix(spec: str) -> tuple[str, str]:
    """``TYPE=PREFIX`` (the prefix may be empty or hold ``=``) as (type, prefix)."""
    kind, sep, prefix = spec.partition("=")
    if not sep or not kind:
        raise ValueError(f"--text-prefixes takes TYPE=PREFIX, got {spec!r}")
    return kind, prefix


# The ``default`` command's evaluation options, the same as ``onnx``'s.
_EVALUATION_FIELDS = ("tatoeba_dir", "tatoeba_langs", "bucc_dir", "bucc_pair", "bucc_max")


def config_from_args(args: argparse.Namespace) -> ExportConfig:
    """Turn parsed ``onnx`` options into an ``ExportConfig``: each field is the option named after it."""
    return ExportConfig(**{field.name: _field_value(args, field.name) for field in fields(ExportConfig)})


def _field_value(args: argparse.Namespace, name: str) -> Any:
    value = getattr(args, name)
    convert = _FIELD_VALUES.get(name)
    if convert is not None:
        return convert(value)
    return tuple(value) if isinstance(value, list) else value


def _config(args: argparse.Namespace) -> ExportConfig:
    if args.command != "default":
        return config_from_args(args)
    config = default_config(args.store, args.cache, name=args.name, variants=_field_value(args, "variants"))
    return replace(config, **{name: _field_value(args, name) for name in _EVALUATION_FIELDS})


def _summary(manifest: Manifest) -> str:
    parity = ", ".join(f"{name} min cosine {report.min_cosine:.6f}" for name, report in sorted(manifest.parity.items()))
    return f"{manifest.name}:{manifest.version} ({', '.join(sorted(manifest.files))}; parity {parity})"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xalign-export``; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Only this project's loggers at the chosen level: the exporter's own INFO output is very chatty.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("xalign.export", "xalign.modelstore", "xalign.training"):
        logging.getLogger(name).setLevel(args.log_level)
    try:
        if args.command == "default":
            _print_default(_publish_default(args))
        elif args.command == "backpack":
            print(_summary(export_and_publish(_backpack_config(args), BACKPACK)))
        elif args.command == "retrain":
            return _print_retrain(retrain(_retrain_job(args)))
        else:
            print(_summary(export_and_publish(_config(args), DUAL_ENCODER)))
    except (ParityError, StoreError, ValueError, OSError) as exc:
        print(f"xalign-export: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _backpack_config(args: argparse.Namespace) -> BackpackExportConfig:
    evaluation = read_evaluation(args.evaluation) if args.evaluation else {}
    return backpack_config(
        args.model_dir, args.store, args.name, languages=args.languages, licenses=args.licenses, evaluation=evaluation
    )


def _retrain_job(args: argparse.Namespace) -> RetrainJob:
    if args.steps is not None and args.steps < 1:
        raise ValueError("--steps must be at least 1")
    return RetrainJob(
        recipe=args.recipe,
        store=args.store,
        name=args.name,
        overrides=Overrides(output=args.output, steps=args.steps, data_root=args.data_root),
        promote=args.promote,
        variants=tuple(dict.fromkeys(args.variants)),
        tatoeba_dir=args.tatoeba_dir or _in_data_root(args.data_root, "tatoeba"),
        tatoeba_langs=tuple(args.tatoeba_langs) if args.tatoeba_langs else None,
        bucc_dir=args.bucc_dir or _in_data_root(args.data_root, "bucc2018"),
        work_dir=args.work_dir,
        progress=not args.no_progress,
        policy=policy_from_args(args),
        force=args.force,
        actor=args.actor,
    )


def _in_data_root(data_root: Path | None, folder: str) -> Path | None:
    """``DATA_ROOT/folder`` if it exists: a retraining job measures what the gate needs when the data is there."""
    if data_root is None or not (Path(data_root) / folder).is_dir():
        return None
    return Path(data_root) / folder


def _print_retrain(result: RetrainResult) -> int:
    print(_summary(result.manifest))
    if result.release is None:
        print(f"{result.manifest.name}:{result.manifest.version} is published, not promoted (--no-promote)")
        return 0
    return print_release(result.release)


def _publish_default(args: argparse.Namespace) -> DefaultResult:
    if args.delta is not None:
        read_delta(args.delta)  # a missing or malformed delta fails before the base is converted and exported
    return publish_default(_config(args), args.delta, gate=not args.no_gate)


def _print_default(result: DefaultResult) -> None:
    print(_summary(result.base))
    if result.aligned is None:
        return
    gate = result.aligned.evaluation.get("gate")
    verdict = gate_summary(gate) if gate is not None else "no gate numbers (no Tatoeba or BUCC data)"
    promoted = "promoted to production" if result.promoted else "not promoted"
    print(f"{_summary(result.aligned)}: {verdict}; {promoted}")


if __name__ == "__main__":
    sys.exit(main())
