"""The texts parity is checked on: the packaged multilingual set ``export/parity_texts.txt`` or a given file."""

from __future__ import annotations

import hashlib
from pathlib import Path

PARITY_TEXTS_FILE = "parity_texts.txt"


def load_parity_texts(path: Path | None = None) -> list[str]:
    """Texts of a parity file (the packaged ``export/parity_texts.txt`` by default).

    One text per line; lines starting with ``#`` are comments and blank lines are skipped.
    """
    # Beside this module rather than importlib.resources: a stale editable install can make ``export``
    # a namespace package, which importlib.resources (Python 3.11) cannot read from.
    source = Path(__file__).with_name(PARITY_TEXTS_FILE) if path is None else Path(path)
    raw = source.read_text(encoding="utf-8")
    texts = [line for line in raw.splitlines() if line.strip() and not line.startswith("#")]
    if not texts:
        raise ValueError(f"parity text file {source} holds no texts")
    return texts


def parity_texts_hash(path: Path | None) -> str:
    """sha256 of the parity texts (the packaged set when ``path`` is None), one per line."""
    return hashlib.sha256("\n".join(load_parity_texts(path)).encode()).hexdigest()
