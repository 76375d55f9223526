"""The model store: the one contract between the offline side and the online side.

Owns the manifest schema (schema_version 2), the versioned on-disk layout
``<store>/<name>/<version>/`` with ``aliases.json`` beside the versions, atomic
publishing, resolution of versions and aliases, and checksum verification on load.
It imports only the standard library, numpy and pydantic: training, export and
the service all depend on it, never the other way round.
"""

from __future__ import annotations

from xalign.modelstore.errors import (
    CorruptFileError,
    InvalidNameError,
    ManifestError,
    ModelNotFoundError,
    PublishError,
    ReferenceNotFoundError,
    SchemaVersionError,
    StoreError,
)
from xalign.modelstore.manifest import (
    SCHEMA_VERSION,
    FileEntry,
    Manifest,
    ModelSpec,
    OnnxInfo,
    ParityReport,
    SourceInfo,
)
from xalign.modelstore.publish import publish
from xalign.modelstore.store import ModelStore, ModelVersion

__all__ = [
    "SCHEMA_VERSION",
    "CorruptFileError",
    "FileEntry",
    "InvalidNameError",
    "Manifest",
    "ManifestError",
    "ModelNotFoundError",
    "ModelSpec",
    "ModelStore",
    "ModelVersion",
    "OnnxInfo",
    "ParityReport",
    "PublishError",
    "ReferenceNotFoundError",
    "SchemaVersionError",
    "SourceInfo",
    "StoreError",
    "publish",
]
