"""Where the data-reader tests find their excerpts and, when present, the full shipped data."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MINI = REPO / "tests" / "data" / "training_mini"
BUCC_MINI = REPO / "tests" / "data" / "bucc_mini"
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
