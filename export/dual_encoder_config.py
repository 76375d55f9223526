"""``ExportConfig``: the dual-encoder export (``xalign-export onnx``); every field is an option named after it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import transformers

from xalign.export.config import PublishConfig
from xalign.export.evaluation import bucc_inputs, tatoeba_inputs
from xalign.export.int8_selection import calibration_path
from xalign.export.parity_texts import parity_texts_hash
from xalign.modelstore.artifacts import VARIANT_FILES
from xalign.modelstore.integrity import sha256_file
from xalign.training.models.pooling import POOLING_MODES, Pooling


@dataclass(frozen=True)
class ExportConfig(PublishConfig):
    """Everything the dual-encoder export needs; each field is also a ``xalign-export onnx`` option."""

    max_seq_length: int = 512
    pooling: Pooling = "mean"
    normalize: bool = True
    text_prefix: str = ""
    # (input type, prefix) pairs a request may choose by ``input_type`` (the manifest's ``text_prefixes``).
    text_prefixes: tuple[tuple[str, str], ...] = ()
    # fp32 is always exported, the others derive from it (file names: ``modelstore/artifacts.py``).
    variants: tuple[str, ...] = ("fp32", "int8")
    quantize_embeddings: bool = True
    allowed_dimensions: tuple[int, ...] = ()
    tokenizer: Path | None = None
    # When set, every variant is evaluated on these Tatoeba files before publishing (results in the manifest).
    tatoeba_dir: Path | None = None
    tatoeba_langs: tuple[str, ...] = ("deu", "fra", "ces", "spa", "rus")
    # When set, every variant's BUCC-2018 F1 on this pair's sample is recorded too, with at most ``bucc_max``
    # sentences per side (every gold pair kept; None: the whole sample).
    bucc_dir: Path | None = None
    bucc_pair: str = "de-en"
    bucc_max: int | None = 8000

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {self.pooling!r}")
        unknown = sorted(set(self.variants) - set(VARIANT_FILES))
        if unknown or "fp32" not in self.variants:
            raise ValueError(f"variants must include fp32 and come from {sorted(VARIANT_FILES)}, got {self.variants}")
        if self.bucc_max is not None and self.bucc_max < 1:
            raise ValueError(f"bucc_max must be positive (or None for the whole sample), got {self.bucc_max}")

    @property
    def tokenizer_path(self) -> Path:
        """The tokenizer.json to publish: ``tokenizer`` if given, else the model folder's."""
        return Path(self.tokenizer) if self.tokenizer is not None else super().tokenizer_path

    def hashed_inputs(self) -> list[tuple[str, str]]:
        """The tokenizer, the parity and calibration texts, then every Tatoeba and BUCC file the evaluation reads."""
        evaluated = tatoeba_inputs(Path(self.tatoeba_dir), self.tatoeba_langs) if self.tatoeba_dir is not None else []
        evaluated += bucc_inputs(Path(self.bucc_dir), self.bucc_pair) if self.bucc_dir is not None else []
        return [
            ("tokenizer", sha256_file(self.tokenizer_path)),
            *super().hashed_inputs(),
            ("calibration", parity_texts_hash(calibration_path())),
            *((f"eval {path.name}", sha256_file(path)) for path in evaluated),
        ]

    def settings(self) -> dict[str, Any]:
        """The shared settings, transformers' version, and the graph, variant and evaluation settings."""
        settings = super().settings()
        settings["libraries"]["transformers"] = transformers.__version__
        settings |= {
            "pooling": self.pooling,
            "normalize": self.normalize,
            "text_prefix": self.text_prefix,
            "variants": sorted(self.variants),
            "quantize_embeddings": self.quantize_embeddings,
            "allowed_dimensions": list(self.allowed_dimensions),
            "tatoeba_langs": list(self.tatoeba_langs) if self.tatoeba_dir is not None else [],
        }
        if self.text_prefixes:  # only then, so versions published without them keep their fingerprints
            settings["text_prefixes"] = dict(self.text_prefixes)
        if self.bucc_dir is not None:  # only then, so versions published before BUCC keep their fingerprints
            settings["bucc"] = {"pair": self.bucc_pair, "max": self.bucc_max}
        return settings
