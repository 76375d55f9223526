"""An encoder for the evaluation tests: every text looked up in a table of vectors, every call recorded."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class TableEncoder:
    """Looks every text up in a table of unit vectors, so the answer of any retrieval is known.

    ``seen`` holds every text it embedded, in order; ``calls`` the number of texts of each call.
    """

    name = "table"

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table
        self.seen: list[str] = []
        self.calls: list[int] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The table's vectors of ``texts``: (len(texts), dim) float32."""
        self.seen.extend(texts)
        self.calls.append(len(texts))
        return np.stack([self.table[t] for t in texts]).astype(np.float32)
