"""The manifest every published version carries, ``schema_version`` 2 (the store contract: docs/architecture.md).

Version 2 added ``text_prefixes``. Version 1 manifests read as before (the field defaults to empty); an older
xalign refuses a version 2 manifest with "upgrade xalign" rather than a validation error about an unknown key.

``ModelSpec`` is what a producer (export, training) knows about a model; ``Manifest``
adds what the store assigns at publish time: name, version, creation time and the
sha256 of every file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xalign.modelstore.errors import ManifestError, SchemaVersionError

SCHEMA_VERSION = 2
MANIFEST_FILE = "manifest.json"

Family = Literal["dual-encoder", "backpack"]
Pooling = Literal["mean", "cls", "last"]


class _Strict(BaseModel):
    # Unknown keys are refused: a typo in a producer must not silently drop information.
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileEntry(_Strict):
    """Checksum and size of one published file."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class OnnxInfo(_Strict):
    """The ONNX graph's interface and the file of each numeric variant (``fp32`` → ``model.onnx``)."""

    opset: int = Field(ge=7)
    inputs: list[str]
    outputs: list[str]
    variants: dict[str, str] = Field(default_factory=dict)


class DataFile(_Strict):
    """A data file that went into the model, with its checksum."""

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class SourceInfo(_Strict):
    """What made the model: base weights, recipe, data, training steps, code revision."""

    base_model: str
    recipe: str | None = None
    data_files: list[DataFile] = Field(default_factory=list)
    steps: int = Field(default=0, ge=0)
    code_revision: str | None = None
    # Hash of every input of the build; a rebuild with the same fingerprint publishes nothing new.
    fingerprint: str | None = None


class ParityReport(_Strict):
    """Agreement of one exported variant with the PyTorch model on the same texts."""

    texts: int = Field(ge=0)
    min_cosine: float
    max_abs_diff: float
    # Largest difference between a text embedded alone and inside a padded batch. int8 variants quantise
    # activations with one scale per batch, so for them this is not ~0 (None: not measured).
    batch_vs_single: float | None = None


class ModelSpec(_Strict):
    """Everything a producer states about a model; the store adds identity and checksums."""

    family: Family
    embedding_dim: int = Field(gt=0)
    pooling: Pooling = "mean"
    normalize: bool = True
    max_seq_length: int = Field(gt=0)
    # Prepended to every input text by the service (E5 models want "query: ").
    text_prefix: str = ""
    # Prefixes by input type, which a request may choose (E5: {"query": "query: ", "passage": "passage: "});
    # empty: the model has one kind of input and ``text_prefix`` applies to every text.
    text_prefixes: dict[str, str] = Field(default_factory=dict)
    languages: list[str] = Field(default_factory=list)
    # Output sizes a client may ask for with `dimensions` (Matryoshka-trained models); empty: only the full size.
    allowed_dimensions: list[int] = Field(default_factory=list)
    onnx: OnnxInfo
    source: SourceInfo
    evaluation: dict[str, dict[str, float]] = Field(default_factory=dict)
    parity: dict[str, ParityReport] = Field(default_factory=dict)
    licenses: list[str] = Field(default_factory=list)


class Manifest(ModelSpec):
    """The manifest.json of one published version."""

    schema_version: int = SCHEMA_VERSION
    name: str
    version: int = Field(ge=1)
    created_at: datetime
    files: dict[str, FileEntry]

    def to_json(self) -> str:
        """Serialise as stable, human-readable JSON."""
        return self.model_dump_json(indent=2) + "\n"


def build_manifest(spec: ModelSpec, name: str, version: int, files: dict[str, FileEntry]) -> Manifest:
    """Combine a producer's spec with the identity and checksums the store assigns."""
    return Manifest(
        **spec.model_dump(),
        name=name,
        version=version,
        created_at=datetime.now(UTC),
        files=files,
    )


def parse_manifest(raw: str, where: str) -> Manifest:
    """Parse manifest JSON; refuse newer schema versions before validating the rest."""
    try:
        data: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: manifest must be a JSON object")
    found = data.get("schema_version")
    if isinstance(found, int) and found > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{where}: schema_version {found} is newer than this xalign understands ({SCHEMA_VERSION}); upgrade xalign"
        )
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(f"{where}: invalid manifest: {exc.error_count()} error(s): {exc}") from exc


def read_manifest(version_dir: Path) -> Manifest:
    """Read and validate ``manifest.json`` of a version folder."""
    path = version_dir / MANIFEST_FILE
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: manifest is missing") from exc
    return parse_manifest(raw, str(path))
