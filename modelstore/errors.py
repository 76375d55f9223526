"""Typed errors of the model store: one tree, so callers catch ``StoreError`` or a precise subclass."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every model-store error."""


class InvalidNameError(StoreError, ValueError):
    """A model name that is empty, too long, or could escape the store (separators, ``..``)."""


class ModelNotFoundError(StoreError, LookupError):
    """No model of that name in the store."""


class ReferenceNotFoundError(StoreError, LookupError):
    """The model exists but the requested version or alias does not."""


class ManifestError(StoreError):
    """A manifest that is missing, unreadable or invalid."""


class SchemaVersionError(ManifestError):
    """A manifest written by a newer xalign (a ``schema_version`` this code does not know)."""


class CorruptFileError(StoreError):
    """A published file is missing or its sha256 does not match the manifest."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class PublishError(StoreError):
    """Publishing failed; the store is left as it was before the attempt."""
