"""The online side must run without torch: importing it with torch made unimportable must work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

_BLOCK_TORCH = """
import importlib.abc, sys

class BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "transformers"}:
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, BlockTorch())
import importlib, pkgutil
root = importlib.import_module(sys.argv[1])
# Import every submodule too, so a lazy import deep inside the package is caught.
for info in pkgutil.walk_packages(root.__path__, prefix=root.__name__ + "."):
    importlib.import_module(info.name)
print("ok")
"""


@pytest.mark.parametrize("package", ["xalign.modelstore", "xalign.runtime", "xalign.service", "xalign.training.data"])
def test_package_imports_without_torch(package: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _BLOCK_TORCH, package], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_blocker_really_blocks() -> None:
    # Guard against a test that cannot fail: the same script must fail on a package that needs torch.
    result = subprocess.run(
        [sys.executable, "-c", _BLOCK_TORCH + "\nimport torch\n", "modelstore"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode != 0
    assert "blocked in this test" in result.stderr
