"""The runtime core imports only the standard library, numpy, onnxruntime, tokenizers, faiss, tqdm and the store.

One exception: ray, in the Ray executor of ``xalign-mine --ray`` only (runtime/mining/ray_executor.py).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[3] / "runtime"
# tqdm: the mining job shows progress with ETA (a base dependency, pyproject.toml).
THIRD_PARTY = frozenset({"numpy", "onnxruntime", "tokenizers", "faiss", "tqdm"})
OWN = ("xalign.modelstore", "xalign.runtime")
# ray: only the Ray executor of ``xalign-mine --ray`` imports it, inside its functions (the extra distributed).
OPTIONAL = {"ray": "mining/ray_executor.py"}


def imported_modules(path: Path) -> list[str]:
    """Every absolute module a file imports (``import a.b`` and ``from a.b import c`` both give ``a.b``)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def allowed(module: str) -> bool:
    top = module.split(".", maxsplit=1)[0]
    if top == "xalign":
        return any(module == own or module.startswith(own + ".") for own in OWN)
    return top in sys.stdlib_module_names or top in THIRD_PARTY


def test_every_runtime_module_imports_only_the_core_dependencies() -> None:
    files = sorted(RUNTIME.rglob("*.py"))
    assert len(files) >= 8  # the scan really reads the package
    wrong = {
        f"{path.relative_to(RUNTIME)}: {m}"
        for path in files
        for m in imported_modules(path)
        if not allowed(m) and OPTIONAL.get(m.split(".")[0]) != path.relative_to(RUNTIME).as_posix()
    }
    assert not wrong


def test_the_scan_refuses_the_service_and_torch() -> None:
    assert not allowed("xalign.service.senses.schema")
    assert not allowed("torch")
    assert not allowed("fastapi")
    assert allowed("xalign.modelstore.artifacts") and allowed("numpy.typing") and allowed("collections.abc")
