"""Model references as users write them: ``name``, ``name:3`` (a version) or ``name@staging`` (an alias)."""

from __future__ import annotations

from dataclasses import dataclass

from xalign.modelstore.errors import InvalidNameError
from xalign.modelstore.names import validate_name


@dataclass(frozen=True)
class ModelRef:
    """A model name with an optional version number or alias; neither means the default."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def parse_ref(text: str) -> ModelRef:
    """Parse ``name``, ``name:VERSION`` or ``name@ALIAS``; raise ``InvalidNameError`` on anything else."""
    if "@" in text:
        name, _, alias = text.partition("@")
        if not alias:
            raise InvalidNameError(f"model reference {text!r} has an empty alias")
        return ModelRef(validate_name(name), alias=alias)
    if ":" in text:
        name, _, version = text.partition(":")
        if not version.isdigit() or int(version) < 1:
            raise InvalidNameError(f"model reference {text!r}: version must be a positive integer")
        return ModelRef(validate_name(name), version=int(version))
    return ModelRef(validate_name(text))
