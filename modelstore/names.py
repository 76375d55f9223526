"""Validation of model names: a name becomes a folder, so it must not escape the store."""

from __future__ import annotations

import re

from modelstore.errors import InvalidNameError

MAX_NAME_LENGTH = 128

# Letters, digits, and . _ - inside; must start with a letter or digit so no name is hidden or relative.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def validate_name(name: str) -> str:
    """Return ``name`` unchanged if it is a safe model name, else raise ``InvalidNameError``."""
    if not name:
        raise InvalidNameError("model name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"model name is longer than {MAX_NAME_LENGTH} characters")
    if "/" in name or "\\" in name or ".." in name or "\x00" in name:
        raise InvalidNameError(f"model name {name!r} contains a path separator or '..'")
    if not _NAME.fullmatch(name):
        raise InvalidNameError(
            f"model name {name!r} must start with a letter or digit and use only letters, digits, '.', '_', '-'"
        )
    return name
