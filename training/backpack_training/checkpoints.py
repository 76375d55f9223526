"""Mid-run checkpoints of a Backpack run: everything a resumed run needs to continue exactly.

``<output>/checkpoints/step-000400/`` holds ``training_state.pt`` (model weights, optimizer and scheduler
state, the torch random state, the data position of ``batches.IndexStream``, the loss sums not yet logged,
the step) and the tokenizer (``tokenizer.json``: a tokenizer trained at the start of a run is not trained
again on resume). A checkpoint is written into a hidden sibling folder and renamed into place, so a
``step-*`` folder is always complete; only the newest ``keep`` are kept. The run's result stays ``final/``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "training_state.pt"
TOKENIZER_FILE = "tokenizer.json"
STATE_FORMAT = 1
_STEP_DIR = re.compile(r"^step-(\d+)$")


def list_states(output: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete mid-run checkpoint of ``output``, oldest first."""
    folder = Path(output) / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), child) for child in folder.iterdir() if (m := _STEP_DIR.match(child.name))]
    return sorted((step, child) for step, child in found if (child / STATE_FILE).is_file())


def latest_state(output: Path) -> Path | None:
    """The newest complete mid-run checkpoint of ``output``, or None."""
    found = list_states(output)
    return found[-1][1] if found else None


def save_state(output: Path, step: int, state: Mapping[str, Any], tokenizer_json: str, keep: int = 1) -> Path:
    """Write the checkpoint of ``step`` atomically and keep the newest ``keep`` (0: all); returns its folder."""
    parent = Path(output) / CHECKPOINTS_DIR
    parent.mkdir(parents=True, exist_ok=True)
    final = parent / f"step-{step:06d}"
    staged = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=parent))
    try:
        torch.save({"format": STATE_FORMAT, "step": step, **state}, staged / STATE_FILE)
        (staged / TOKENIZER_FILE).write_text(tokenizer_json, encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        staged.rename(final)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    found = list_states(output)
    for _, folder in found[:-keep] if keep > 0 else []:
        shutil.rmtree(folder)
    return final


def load_state(folder: Path) -> dict[str, Any]:
    """The ``training_state.pt`` of a checkpoint folder (tensors and plain Python values only)."""
    state: dict[str, Any] = torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=True)
    if int(state.get("format", 0)) > STATE_FORMAT:
        raise ValueError(f"{folder}: checkpoint format {state['format']} is newer than this xalign's")
    return state
