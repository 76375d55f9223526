"""What the runtime raises when a published version cannot be run as asked.

Plain exceptions, no HTTP: the service decides what each means to a client (``service/registry.py`` counts
them among the failures a version may have at load time and keeps that version out).
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of the runtime's own errors: a version's files or graph do not fit what was asked of them."""


class UnknownVariantError(EngineError, LookupError):
    """The manifest has no ONNX file for the requested numeric variant."""


class SenseGraphError(EngineError, ValueError):
    """The graph lacks a senses output, or its outputs disagree with ``senses.npz`` or the manifest."""
