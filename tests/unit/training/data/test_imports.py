"""training.data must import without torch, transformers or faiss (plain Python, NumPy and modelstore)."""

from __future__ import annotations

import subprocess
import sys

from data_paths import REPO

_BLOCK = """
import importlib, importlib.abc, pkgutil, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "transformers", "faiss"}:
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, Block())
root = importlib.import_module("xalign.training.data")
for info in pkgutil.walk_packages(root.__path__, prefix="xalign.training.data."):
    importlib.import_module(info.name)
__EXTRA__
print("ok")
"""


def _run(extra: str) -> subprocess.CompletedProcess[str]:
    code = _BLOCK.replace("__EXTRA__", extra)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)


def test_every_data_module_imports_without_torch_or_faiss() -> None:
    result = _run("")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_blocker_blocks_faiss() -> None:
    result = _run("import xalign.training.evaluate.bucc")  # pulls faiss through runtime.margin
    assert result.returncode != 0
    assert "faiss is blocked" in result.stderr
