"""Where a checkpoint came from: the code revision that produced it (library versions: ``training/run_manifest.py``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def code_revision(repo: Path = REPO) -> str | None:
    """``git rev-parse HEAD`` of ``repo``, with ``+dirty`` when tracked files differ; None without git."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        # Fixed arguments except the repository folder, which is this package's own checkout.
        head = subprocess.run(  # noqa: S603
            [git, "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        diff = [git, "-C", str(repo), "diff", "--quiet", "HEAD"]
        dirty = subprocess.run(diff, check=False, timeout=30).returncode  # noqa: S603
    except (subprocess.SubprocessError, OSError):
        return None
    return f"{head}+dirty" if dirty else head
