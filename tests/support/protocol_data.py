"""A data folder holding the benchmark protocol's two Tatoeba files (``benchmarks/protocol.py``), a few lines each."""

from __future__ import annotations

from pathlib import Path

GERMAN = ["Hallo Welt.", "Wie geht es dir?", "Ich bin müde."]
ENGLISH = ["Hello world.", "How are you?", "I am tired."]


def protocol_data(root: Path) -> Path:
    """``root/data`` with ``tatoeba/tatoeba.deu-eng.{deu,eng}``: what the HTTP benchmarks read as ``--data``."""
    tatoeba = root / "data" / "tatoeba"
    tatoeba.mkdir(parents=True)
    (tatoeba / "tatoeba.deu-eng.deu").write_text("".join(f"{line}\n" for line in GERMAN), encoding="utf-8")
    (tatoeba / "tatoeba.deu-eng.eng").write_text("".join(f"{line}\n" for line in ENGLISH), encoding="utf-8")
    return root / "data"
