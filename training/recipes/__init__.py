"""Training recipes: the ``Recipe`` dataclasses (``recipe``), the TOML loader (``loader``), and the four
comparison recipes of the real run as TOML files beside them (``en_x``, ``multiway``, ``dap``,
``multiway_align_mlm``). Nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path

RECIPES_DIR = Path(__file__).resolve().parent
