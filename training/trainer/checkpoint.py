"""Checkpoints: a transformers folder that export takes like any base, plus what resuming needs.

``<output>/step-000400/`` holds

* ``model.safetensors``, ``config.json`` and the tokenizer files: the encoder only (``save_pretrained``);
* ``training_state.pt``: optimizer and scheduler state, the training-only heads (RTL decoder, MLM head), the
  step, the data cursor and the RNG states of rank 0;
* ``xalign_checkpoint.json``: the ``CheckpointManifest`` (recipe, data files with sha256 and line counts,
  step, metrics, code revision, library versions), written last.

A checkpoint is written into a hidden sibling folder and renamed into place, so a folder named ``step-*`` is
always complete. Only the newest ``keep`` checkpoints are kept.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from xalign.modelstore.manifest import SourceInfo
from xalign.training.data.corpus import Corpus
from xalign.training.run_manifest import RunManifest

CHECKPOINT_MANIFEST = "xalign_checkpoint.json"
TRAINING_STATE = "training_state.pt"
_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass(frozen=True, kw_only=True)
class CheckpointManifest(RunManifest):
    """What a checkpoint says about itself (``xalign_checkpoint.json``; the shared fields: ``RunManifest``).

    ``step`` optimizer steps done of the recipe's ``steps``; ``data`` the training corpora and dictionaries,
    ``dev_data`` the Tatoeba dev files (monitoring only); ``metrics`` ``{"train": {...}, "dev": {...}}`` of the
    last logged step and the last dev evaluation.
    """

    FILE: ClassVar[str] = CHECKPOINT_MANIFEST
    KIND: ClassVar[str] = "checkpoint"
    CORPUS_FIELDS: ClassVar[tuple[str, ...]] = ("data", "dev_data")

    base_model: str
    dev_data: list[Corpus] = field(default_factory=list)
    code_revision: str | None = None
    world_size: int = 1

    def source_info(self) -> SourceInfo:
        """The ``source`` of a store manifest for a model exported from this checkpoint."""
        return SourceInfo(
            base_model=self.base_model,
            recipe=self.recipe_file,
            data_files=self.data_files(),
            steps=self.step,
            code_revision=self.code_revision,
        )


def checkpoint_dir(output: Path, step: int) -> Path:
    """The folder of the checkpoint after ``step`` optimizer steps."""
    return Path(output) / f"step-{step:06d}"


def read_manifest(folder: Path) -> CheckpointManifest:
    """The manifest of a checkpoint folder; ``FileNotFoundError`` if it has none."""
    return CheckpointManifest.read(folder)


def list_checkpoints(output: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint under ``output``, oldest first."""
    if not Path(output).is_dir():
        return []
    found = []
    for child in Path(output).iterdir():
        match = _STEP_DIR.match(child.name)
        if match and (child / CHECKPOINT_MANIFEST).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(output: Path) -> Path | None:
    """The newest complete checkpoint under ``output``, or None."""
    found = list_checkpoints(output)
    return found[-1][1] if found else None


def save_checkpoint(
    output: Path,
    encoder: Any,
    tokenizer: Any,
    state: Mapping[str, Any],
    manifest: CheckpointManifest,
    *,
    keep: int = 0,
) -> Path:
    """Write a checkpoint of ``manifest.step`` atomically; keep the newest ``keep`` (0: all). Returns its folder."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir(output, manifest.step)
    staged = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=output))
    try:
        staged.chmod(0o755)  # mkdtemp makes 0700; checkpoints are read by export and other users
        encoder.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        torch.save(dict(state), staged / TRAINING_STATE)
        manifest.write(staged)
        if final.exists():  # the same step saved again (a resumed run stopping where it started)
            shutil.rmtree(final)
        staged.rename(final)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    prune_checkpoints(output, keep)
    return final


def prune_checkpoints(output: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints (0 keeps all); returns the deleted folders."""
    found = list_checkpoints(output)
    doomed = [folder for _, folder in found[:-keep]] if keep > 0 else []
    for folder in doomed:
        shutil.rmtree(folder)
    return doomed


def load_training_state(folder: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """The ``training_state.pt`` of a checkpoint (tensors and plain Python values only)."""
    state: dict[str, Any] = torch.load(Path(folder) / TRAINING_STATE, map_location=device, weights_only=True)
    return state
