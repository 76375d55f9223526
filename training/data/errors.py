"""The one error the data readers raise for a file whose content is wrong."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A data file is malformed: names the file and, where known, the 1-based line (``path:line: reason``).

    A ``ValueError`` so that callers that already catch ``ValueError`` for bad input keep working.
    """

    def __init__(self, path: Path | str, reason: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {reason}")
