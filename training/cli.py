"""``xalign-train``: train and evaluate cross-lingually aligned encoders.

Subcommands (``_SUBCOMMANDS`` describes each; one ``_add_*_parser`` and one ``cmd_*`` function each): ``train``
(``training/trainer/``; resumable, torchrun-ready), ``eval`` (its options and run in ``training/eval_command.py``),
``delta`` (``training/delta.py``), ``backpack`` (``training/backpack_training/``) and ``schema``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeAlias

from xalign.modelstore.errors import StoreError
from xalign.training.backpack_training.recipe import BackpackRecipe, load_backpack_recipe
from xalign.training.eval_command import add_eval_options, cmd_eval
from xalign.training.recipes.base import recipe_schema
from xalign.training.recipes.loader import Overrides, load_recipe
from xalign.training.recipes.recipe import OFFLINE_E5, Recipe

# Each subcommand's one-line help and its description.
_SUBCOMMANDS = {
    "train": (
        "train an encoder as a recipe says",
        "Train as RECIPE (a TOML file; see training/recipes/) says. Checkpoints, metrics.jsonl and loss_curve.png "
        "go to the recipe's output folder. For several processes run it under torchrun, e.g. torchrun "
        "--nproc_per_node 2 -m xalign.training.cli train RECIPE.toml.",
    ),
    "eval": (
        "Tatoeba accuracy, BUCC-2018 F1 and XNLI retrieval of a model",
        "Evaluate a model: Tatoeba 1-NN accuracy both directions, BUCC-2018 F1 with LASER margin mining "
        "(ratio, k=4, max retrieval, best threshold on the gold) and/or XNLI 1-NN retrieval against English "
        "(training/eval_command.py).",
    ),
    "delta": (
        "extract a small delta from a checkpoint, or apply one to its base",
        "A delta is the encoder tensors a checkpoint changed over its base (e.g. the top layers of a "
        "train_top_layers run), with the base's sha256 and the training provenance: small enough to commit. "
        "extract writes one; apply rebuilds the trained model from its base and a delta.",
    ),
    "backpack": (
        "train a Backpack LM as a Backpack recipe says",
        "Train a Backpack LM as RECIPE (see training/recipes/backpack/) says: metrics.jsonl, loss_curve.png and "
        "the checkpoint final/ (with training_manifest.json) go to the recipe's output.",
    ),
    "schema": (
        "print the JSON schema of a recipe file",
        "Print the JSON schema of a train recipe (training/recipes/*.toml) or of a backpack recipe "
        "(training/recipes/backpack/*.toml): every key, its type and its default.",
    ),
}
# The recipe class of each recipe kind ``schema`` describes.
_RECIPES: dict[str, type] = {"train": Recipe, "backpack": BackpackRecipe}


class CliError(Exception):
    """A usage or setup problem reported as one line, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``xalign-train`` with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="xalign-train", description="Train and evaluate cross-lingually aligned text encoders."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train_parser(sub)
    _add_eval_parser(sub)
    _add_delta_parser(sub)
    _add_backpack_parser(sub)
    _add_schema_parser(sub)
    return parser


Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _subcommand(sub: Subparsers, name: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """Add subcommand ``name`` (help and description from ``_SUBCOMMANDS``), run by ``func``."""
    summary, description = _SUBCOMMANDS[name]
    p = sub.add_parser(name, help=summary, description=description)
    p.set_defaults(func=func)
    return p


def _add_recipe_options(p: argparse.ArgumentParser) -> None:
    """The recipe file and the keys both trainers let the command line replace."""
    p.add_argument("recipe", type=Path, metavar="RECIPE.toml", help="the recipe file")
    p.add_argument("--output", type=Path, metavar="DIR", help="output folder (default: the recipe's output)")
    p.add_argument("--steps", type=int, metavar="N", help="total optimizer steps, replacing the recipe's steps")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _check_steps(args: argparse.Namespace) -> None:
    if args.steps is not None and args.steps < 1:
        raise CliError("--steps must be at least 1")


def _add_train_parser(sub: Subparsers) -> None:
    p = _subcommand(sub, "train", cmd_train)
    _add_recipe_options(p)
    p.add_argument(
        "--data-root",
        type=Path,
        metavar="DIR",
        help="folder the recipe's data paths are relative to (default: its own)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in the output folder (start fresh if there is none)",
    )
    p.add_argument("--seed", type=int, metavar="N", help="random seed, replacing the recipe's seed")
    p.add_argument(
        "--stop-after",
        type=int,
        metavar="K",
        help="stop after K optimizer steps with a checkpoint; the schedule still runs to --steps, so --resume "
        "later continues exactly",
    )


def cmd_train(args: argparse.Namespace) -> int:
    """``xalign-train train``: load and check the recipe, then train (see ``training.trainer.loop``)."""
    from xalign.training.trainer.loop import train  # noqa: PLC0415 - imports torch

    _check_steps(args)
    if args.stop_after is not None and args.stop_after < 1:
        raise CliError("--stop-after must be at least 1")
    if args.seed is not None and args.seed < 0:
        raise CliError("--seed must not be negative")
    overrides = Overrides(output=args.output, steps=args.steps, data_root=args.data_root, seed=args.seed)
    recipe = load_recipe(args.recipe, overrides)
    _configure_logging()
    result = train(
        recipe,
        resume=args.resume,
        stop_after=args.stop_after,
        progress=not args.no_progress,
        recipe_file=args.recipe.name,
    )
    if result.checkpoint is not None and _is_main_process():
        sys.stdout.write(f"step {result.step}: {result.checkpoint}\n")
    return 0


def _configure_logging() -> None:
    level = logging.INFO if _is_main_process() else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _add_eval_parser(sub: Subparsers) -> None:
    add_eval_options(_subcommand(sub, "eval", cmd_eval))


def _add_delta_parser(sub: Subparsers) -> None:
    p = _subcommand(sub, "delta", cmd_delta)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    extract = actions.add_parser("extract", help="write the delta of a checkpoint over its base")
    extract.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="a step-NNNNNN checkpoint folder")
    extract.add_argument("--evaluation", type=Path, metavar="JSON", help='{"task": {"metric": number}} to record')
    extract.add_argument("--recipe", type=Path, metavar="RECIPE.toml", help="the recipe file, copied into the delta")
    extract.add_argument(
        "--rank",
        type=int,
        metavar="N",
        help="compress (lossy): each weight matrix's change as rank-N float16 factors, vectors as float16 changes "
        "(training/delta_codec.py); without it the changed tensors are stored whole (exact)",
    )
    extract.add_argument(
        "--embedding-rows", type=int, default=4096, metavar="N", help="with --rank: word-embedding rows kept"
    )
    apply = actions.add_parser("apply", help="rebuild the trained model from its base and a delta")
    apply.add_argument("delta", type=Path, metavar="DELTA", help="a delta folder (delta.json, delta.safetensors)")
    for action in (extract, apply):
        action.add_argument(
            "--base",
            required=True,
            metavar="DIR",
            help=f"the base transformers folder, or {OFFLINE_E5} (converted into --cache)",
        )
        action.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write")
        action.add_argument(
            "--cache", type=Path, default=Path(".cache/xalign"), metavar="DIR", help="offline base cache"
        )


def cmd_delta(args: argparse.Namespace) -> int:
    """``xalign-train delta extract|apply``: see ``training.delta``."""
    from xalign.training.delta import apply_delta, extract_delta  # noqa: PLC0415 - imports torch
    from xalign.training.delta_codec import Compression  # noqa: PLC0415 - imports torch

    base = _base_folder(args.base, args.cache)
    if args.action == "apply":
        sys.stdout.write(f"{apply_delta(base, args.delta, args.out)}\n")
        return 0
    evaluation = _read_evaluation(args.evaluation) if args.evaluation is not None else None
    compression = None if args.rank is None else Compression(args.rank, args.embedding_rows)
    manifest = extract_delta(
        args.checkpoint, base, args.out, evaluation=evaluation, recipe_toml=args.recipe, compression=compression
    )
    sys.stdout.write(
        f"{args.out}: {len(manifest.tensors)} tensors, {manifest.file_bytes / 1e6:.1f} MB, step {manifest.step}, "
        f"sha256 {manifest.file_sha256}\n"
    )
    return 0


def _base_folder(base: str, cache: Path) -> Path:
    if base == OFFLINE_E5:
        from xalign.training.models.offline_e5 import ensure_offline_base  # noqa: PLC0415 - numpy-heavy conversion

        return ensure_offline_base(cache)
    return Path(base)


def _read_evaluation(path: Path) -> dict[str, dict[str, float]]:
    """``{"task": {"metric": number}}`` from a JSON file (what ``eval --json`` writes)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    ok = isinstance(data, dict) and all(
        isinstance(metrics, dict)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in metrics.values())
        for metrics in data.values()
    )
    if not ok:
        raise CliError(f'{path}: evaluation must be {{"task": {{"metric": number}}}}')
    return {str(task): {str(k): float(v) for k, v in metrics.items()} for task, metrics in data.items()}


def _add_backpack_parser(sub: Subparsers) -> None:
    p = _subcommand(sub, "backpack", cmd_backpack)
    _add_recipe_options(p)
    p.add_argument("--resume", action="store_true", help="continue from the newest mid-run checkpoint (save_every)")


def cmd_backpack(args: argparse.Namespace) -> int:
    """``xalign-train backpack``: load and check the recipe, then train (``training.backpack_training.loop``)."""
    from xalign.training.backpack_training.loop import RunControl, train_backpack  # noqa: PLC0415 - imports torch

    _check_steps(args)
    recipe = load_backpack_recipe(args.recipe, output=args.output, steps=args.steps)
    _configure_logging()
    control = RunControl(resume=args.resume)
    result = train_backpack(recipe, progress=not args.no_progress, recipe_file=args.recipe, control=control)
    sys.stdout.write(f"step {result.step}: {result.checkpoint}\n")
    return 0


def _add_schema_parser(sub: Subparsers) -> None:
    p = _subcommand(sub, "schema", cmd_schema)
    p.add_argument("kind", nargs="?", choices=sorted(_RECIPES), default="train", help="which recipe (default: train)")


def cmd_schema(args: argparse.Namespace) -> int:
    """``xalign-train schema [train|backpack]``: the recipe's JSON schema on stdout (indent 2)."""
    sys.stdout.write(json.dumps(recipe_schema(_RECIPES[args.kind]), indent=2, ensure_ascii=False) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xalign-train``; returns the exit code (2 on a usage or data error)."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (CliError, StoreError, FileNotFoundError, ValueError) as exc:
        sys.stderr.write(f"xalign-train {args.command}: {exc}\n")
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
