"""``PublishConfig``: what every family's export shares (``export/pipeline.py``); each family adds its fields.

The dual encoder's ``ExportConfig`` (``export/dual_encoder_config.py``) and the Backpack's
``BackpackExportConfig`` (``export/backpack.py``) subclass it. A config also says what its fingerprint covers
(``hashed_inputs`` and ``settings``, see ``export/fingerprint.py``): every input and setting that shapes the
published version, never a location.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import onnxruntime
import torch

from xalign.export.onnx_graph import DEFAULT_OPSET, check_opset
from xalign.export.parity_texts import parity_texts_hash
from xalign.modelstore.artifacts import TOKENIZER_FILE
from xalign.modelstore.manifest import DataFile
from xalign.modelstore.names import validate_name

# Bump when a change here changes what gets published for the same inputs (graph, variants, tokenizer).
EXPORT_CODE_VERSION = "2"

Evaluation = dict[str, dict[str, float]]


@dataclass(frozen=True)
class PublishConfig:
    """Where the model comes from and goes to, the graph's limits, and the provenance the manifest records.

    ``max_seq_length`` None means the model's positions.
    """

    model_dir: Path
    store: Path
    name: str
    base_model: str
    max_seq_length: int | None = None
    languages: tuple[str, ...] = ()
    opset: int = DEFAULT_OPSET
    recipe: str | None = None
    data_files: tuple[DataFile, ...] = ()
    steps: int = 0
    code_revision: str | None = None
    evaluation: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    licenses: tuple[str, ...] = ()
    parity_texts: Path | None = None
    work_dir: Path | None = None

    def __post_init__(self) -> None:
        validate_name(self.name)
        check_opset(self.opset)
        if (self.max_seq_length is not None and self.max_seq_length < 1) or self.steps < 0:
            raise ValueError("max_seq_length must be positive and steps non-negative")

    def fitted_length(self, positions: int) -> int:
        """The token limit to publish: ``max_seq_length`` (None: the model's ``positions``), never more than those."""
        if self.max_seq_length is not None and self.max_seq_length > positions:
            raise ValueError(f"max_seq_length {self.max_seq_length} exceeds the model's {positions} positions")
        return positions if self.max_seq_length is None else self.max_seq_length

    @property
    def tokenizer_path(self) -> Path:
        """The tokenizer.json the service gets (truncating, not padding): the model folder's."""
        return Path(self.model_dir) / TOKENIZER_FILE

    def given_evaluation(self) -> Evaluation:
        """The evaluation the caller measured before exporting, as plain dictionaries."""
        return {task: dict(metrics) for task, metrics in self.evaluation.items()}

    def hashed_inputs(self) -> list[tuple[str, str]]:
        """(label, sha256) of every input besides the model folder, in the order the fingerprint hashes them."""
        return [("parity", parity_texts_hash(self.parity_texts))]

    def settings(self) -> dict[str, Any]:
        """The settings that change the published files or manifest, as JSON-ready values.

        Library versions are in: a different exporter makes a different graph.
        """
        return {
            "export_code_version": EXPORT_CODE_VERSION,
            "libraries": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
            "base_model": self.base_model,
            "max_seq_length": self.max_seq_length,
            "languages": list(self.languages),
            "opset": self.opset,
            "recipe": self.recipe,
            "data_files": [f.model_dump() for f in self.data_files],
            "steps": self.steps,
            "code_revision": self.code_revision,
            "evaluation": self.given_evaluation(),
            "licenses": list(self.licenses),
        }
