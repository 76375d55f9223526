"""pyproject.toml against the code: every third-party import declared, every package folder listed."""

from __future__ import annotations

import ast
import functools
import re
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SUBPACKAGES = ("modelstore", "runtime", "service", "training", "export")
SERVING = ("modelstore", "runtime", "service")
# The typed HTTP client: the base dependencies and its extra `client`, nothing of the other subpackages.
CLIENT = "client"

# Import name → the distributions that provide it, where the two differ by more than "_" and "-". A module with
# two entries comes in a CPU and a GPU build: extra `cpu` must declare the first and extra `gpu` the second.
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "yaml": ("pyyaml",),
    "sklearn": ("scikit-learn",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "faiss": ("faiss-cpu", "faiss-gpu-cu12"),
    "opentelemetry": ("opentelemetry-api",),
}
# Modules of an optional extra that one file imports inside its functions only, so the serving and offline
# installs never reach them: module → (extra, that file).
OPTIONAL: dict[str, tuple[str, str]] = {
    "ray": ("distributed", "runtime/mining/ray_executor.py"),
    "opentelemetry": ("tracing", "service/tracing.py"),
}


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project


def _names(requirements: Iterable[str]) -> set[str]:
    """Normalised distribution names (PEP 503) of requirement strings such as ``"torch>=2.4,<2.16"``."""
    found = set()
    for requirement in requirements:
        match = re.match(r"[A-Za-z0-9._-]+", requirement)
        assert match is not None, requirement
        found.add(re.sub(r"[-_.]+", "-", match.group(0)).lower())
    return found


def _declared(*extras: str) -> set[str]:
    """The base dependencies and those of ``extras``."""
    project = _project()
    return _names(project["dependencies"]).union(*(_names(project["optional-dependencies"][e]) for e in extras))


def _tops(node: ast.AST) -> list[str]:
    """The top-level modules an import statement names (absolute imports; nothing for other nodes)."""
    if isinstance(node, ast.Import):
        return [alias.name.split(".")[0] for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module.split(".")[0]]
    return []


def _trees(subpackages: Iterable[str]) -> Iterable[tuple[str, ast.Module]]:
    for subpackage in subpackages:
        for path in sorted((REPO / subpackage).rglob("*.py")):
            yield str(path.relative_to(REPO)), ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@functools.cache
def _imported(subpackage: str) -> dict[str, str]:
    """Top-level third-party module → the first file of ``subpackage`` that imports it (absolute imports)."""
    modules: dict[str, str] = {}
    for path, tree in _trees([subpackage]):
        for node in ast.walk(tree):
            for top in _tops(node):
                if top not in sys.stdlib_module_names and top not in {"xalign", "__future__"}:
                    modules.setdefault(top, path)
    return modules


def _providers(module: str) -> tuple[str, ...]:
    return DISTRIBUTIONS.get(module, (module.replace("_", "-").lower(),))


def _undeclared(subpackages: Iterable[str], declared: set[str], build: int) -> list[str]:
    """``module (file)`` for each import of ``subpackages`` whose provider of ``build`` (0 CPU, 1 GPU) is missing."""
    missing = []
    for subpackage in subpackages:
        for module, path in _imported(subpackage).items():
            if module in OPTIONAL:
                continue  # declared by its extra (test_optional_modules_are_imported_lazily_by_one_file)
            providers = _providers(module)
            if providers[min(build, len(providers) - 1)] not in declared:
                missing.append(f"{module} ({path})")
    return missing


@pytest.mark.parametrize("subpackage", SUBPACKAGES)
def test_the_scan_sees_the_imports(subpackage: str) -> None:
    # numpy is imported everywhere: a scan that finds nothing would let every other check pass.
    assert "numpy" in _imported(subpackage)


def test_every_import_is_declared_in_the_base_or_an_extra() -> None:
    everything = _declared(*_project()["optional-dependencies"])
    assert _undeclared(SUBPACKAGES, everything, 0) == []
    assert _undeclared(SUBPACKAGES, everything, 1) == []


@pytest.mark.parametrize(("extra", "build"), [("cpu", 0), ("gpu", 1)])
def test_serving_needs_the_base_and_one_runtime_extra(extra: str, build: int) -> None:
    # The serving images install `.[cpu]` or `.[gpu]` and nothing else (Dockerfile, serve-deps-*).
    assert _undeclared(SERVING, _declared(extra), build) == []


def test_offline_side_needs_the_cpu_train_and_export_extras() -> None:
    # `make test` and the model and train images install `.[cpu,train,export]`.
    assert _undeclared(SUBPACKAGES, _declared("cpu", "train", "export"), 0) == []


@pytest.mark.parametrize("module", sorted(OPTIONAL))
def test_optional_modules_are_imported_lazily_by_one_file(module: str) -> None:
    # e.g. ray: only `xalign-mine --ray` imports it, so every other command runs without the extra.
    extra, owner = OPTIONAL[module]
    assert _providers(module)[0] in _names(_project()["optional-dependencies"][extra])
    importers = {path for path, tree in _trees(SUBPACKAGES) for node in ast.walk(tree) if module in _tops(node)}
    assert importers == {owner}
    tree = dict(_trees([owner.split("/")[0]]))[owner]
    assert not [node for node in tree.body if module in _tops(node)]  # no import at module level


def test_the_client_needs_the_base_and_its_extra() -> None:
    # `pip install 'xalign[client]'`: no runtime, no torch, no ONNX.
    assert "httpx" in _imported(CLIENT)
    assert _undeclared([CLIENT], _declared("client"), 0) == []


def test_cpu_and_gpu_builds_are_extras_never_both_installed() -> None:
    # Both builds install the same modules: the base holds neither, each extra holds one build of each module.
    project = _project()
    base, extras = _names(project["dependencies"]), project["optional-dependencies"]
    pairs = [providers for providers in DISTRIBUTIONS.values() if len(providers) == 2]
    assert _names(extras["cpu"]) == {cpu for cpu, _ in pairs}
    assert _names(extras["gpu"]) == {gpu for _, gpu in pairs}
    assert not base & ({cpu for cpu, _ in pairs} | {gpu for _, gpu in pairs})
    assert not base & {"torch", "transformers"}  # serving needs no torch


def test_setuptools_packages_are_the_folders_with_an_init() -> None:
    listed = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    folders = {
        ".".join(("xalign", *init.parent.relative_to(REPO).parts))
        for subpackage in (*SUBPACKAGES, CLIENT)
        for init in (REPO / subpackage).rglob("__init__.py")
    }
    assert (REPO / "__init__.py").is_file()
    assert sorted(listed) == sorted({"xalign"} | folders)
