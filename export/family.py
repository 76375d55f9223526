"""The family plug-in: what the one export pipeline (``export/pipeline.py``) asks of a model family.

A family loads its checkpoint as a torch module, says how the service embeds with it (``Serving``), writes its
ONNX variants and any other files into the staging folder (``Staged``), runs the torch reference for parity and
flattens its outputs into comparable rows, and measures the staged variants. Implemented by the dual encoder
(``export/dual_encoder.py``) and the Backpack (``export/backpack.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from xalign.export.config import Evaluation, PublishConfig
from xalign.modelstore.artifacts import VARIANT_FILES
from xalign.modelstore.manifest import Family as FamilyName
from xalign.training.models.pooling import Pooling

if TYPE_CHECKING:
    import torch
    from torch import nn

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
# Output name -> float32 array: whole graph outputs, or the rows of them that parity compares.
Outputs = dict[str, FloatArray]

ConfigT_contra = TypeVar("ConfigT_contra", bound=PublishConfig, contravariant=True)
ModelT = TypeVar("ModelT", bound="nn.Module")


@dataclass(frozen=True)
class Serving:
    """The manifest fields a family decides: how the service embeds with the published version."""

    embedding_dim: int
    max_seq_length: int
    pooling: Pooling = "mean"
    normalize: bool = True
    text_prefix: str = ""
    allowed_dimensions: tuple[int, ...] = ()
    text_prefixes: tuple[tuple[str, str], ...] = ()

    def manifest_fields(self) -> dict[str, Any]:
        """These fields as ``ModelSpec`` takes them."""
        return asdict(self) | {
            "allowed_dimensions": list(self.allowed_dimensions),
            "text_prefixes": dict(self.text_prefixes),
        }


@dataclass(frozen=True)
class Staged:
    """What a family wrote into the staging folder: ONNX variants (variant -> file) and other files to publish
    (file name in the version -> file)."""

    variants: dict[str, Path]
    extras: dict[str, Path] = field(default_factory=dict)

    def files(self) -> dict[str, Path]:
        """Every staged file under its name in the version (``modelstore/artifacts.py``)."""
        return {**{VARIANT_FILES[name]: path for name, path in self.variants.items()}, **self.extras}


class Family(Protocol[ConfigT_contra, ModelT]):
    """A model family the pipeline can export: the dual encoder or the Backpack."""

    @property
    def name(self) -> FamilyName:
        """The manifest's ``family``."""
        ...

    @property
    def outputs(self) -> tuple[str, ...]:
        """The graph's output names, ``sentence_embedding`` first."""
        ...

    def load(self, config: ConfigT_contra) -> ModelT:
        """The checkpoint of ``config.model_dir`` as the torch module that gets exported, in eval mode."""
        ...

    def serving(self, config: ConfigT_contra, model: ModelT) -> Serving:
        """How the service embeds with the version (``PublishConfig.fitted_length`` the token limit);
        ``ValueError`` if the config does not fit the model."""
        ...

    def stage(self, config: ConfigT_contra, model: ModelT, staging: Path) -> Staged:
        """Write the fp32 graph, the derived variants and any other published files into ``staging``."""
        ...

    def forward(self, model: ModelT, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Outputs:
        """The torch reference: ids and mask (batch, seq) -> every output by name, as float32 arrays."""
        ...

    def rows(self, outputs: Outputs, attention_mask: IntArray, width: int) -> Outputs:
        """Each output as rows that do not depend on padding or batch shape (``width``: the longest text)."""
        ...

    def measure(self, config: ConfigT_contra, variants: Mapping[str, Path], tokenizer: Path, dim: int) -> Evaluation:
        """Evaluate the staged variants (with the service tokenizer) before publishing; {} for none."""
        ...
