"""The wheel as a user gets it: built, installed into a fresh venv and run from outside the checkout.

The checkout's own tests run against the editable install, whose finder maps ``xalign`` to the repository
root: a module or a data file missing from pyproject's package list would go unseen there. Here the wheel is
installed with ``--no-deps`` and finds its dependencies in this venv's site-packages through a plain path line
in a ``.pth`` file (no network); ``site`` does not read the ``.pth`` files of a folder added that way, so this
venv's editable finder stays off.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = ("xalign-store", "xalign-serve", "xalign-export", "xalign-train", "xalign-mine")
# What the wheel is built from: what the Dockerfile's `source` stage copies.
SOURCES = (
    "pyproject.toml",
    "README.md",
    "__init__.py",
    "modelstore",
    "runtime",
    "service",
    "training",
    "export",
    "client",
)
TEXTS = ["the cat sat on the mat", "good morning, world", "numbers 12345 and more", "why? because!"]

MINE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import xalign
    from xalign.runtime.margin import mine
    from xalign.runtime.onnx_encoder import OnnxEncoder

    encoder = OnnxEncoder.from_store(Path(sys.argv[1]), "tiny", threads=1)
    vectors = encoder.encode(json.loads(sys.argv[2]))  # (n, dim), L2-normalised in the graph
    finders = [repr(finder) for finder in sys.meta_path if "editable" in repr(finder)]
    pairs = [[pair.src, pair.tgt] for pair in mine(vectors, vectors)]
    print(json.dumps({"xalign": xalign.__file__, "finders": finders, "pairs": pairs}))
    """
)


def _env() -> dict[str, str]:
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    return {key: value for key, value in os.environ.items() if key not in drop}


def _run(command: list[str], cwd: Path, timeout: float = 120) -> str:
    result = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{(result.stdout + result.stderr)[-4000:]}"
    return result.stdout


def _build_wheel(tmp: Path) -> Path:
    """The wheel of a copy of the sources (setuptools builds in the source tree; the checkout stays as it is)."""
    source = tmp / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    # No build isolation: setuptools and wheel come from this venv (the dev extra), so nothing is downloaded.
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp / "dist"), str(source)], tmp)
    (wheel,) = (tmp / "dist").glob("xalign-*.whl")
    return wheel


def _fresh_venv(tmp: Path, wheel: Path) -> Path:
    """A venv holding the wheel alone, with this venv's site-packages after its own on sys.path."""
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", "--python", str(python)]
    _run([*pip, "install", "--no-deps", "--no-index", str(wheel)], tmp)
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp).strip()
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(purelib) / "xalign_test_dependencies.pth").write_text("".join(f"{p}\n" for p in ours), encoding="utf-8")
    return venv


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    return _fresh_venv(tmp, _build_wheel(tmp))


@pytest.mark.parametrize("script", SCRIPTS)
def test_console_scripts_answer_help(fresh_venv: Path, script: str, tmp_path: Path) -> None:
    out = _run([str(fresh_venv / "bin" / script), "--help"], tmp_path)
    assert "usage:" in out.lower(), out


def test_the_packages_import_from_the_fresh_venv(fresh_venv: Path, tmp_path: Path) -> None:
    code = "import xalign, xalign.service.app, xalign.runtime.margin; print(xalign.__file__)"
    location = Path(_run([str(fresh_venv / "bin" / "python"), "-c", code], tmp_path).strip())
    assert location.is_relative_to(fresh_venv), location
    assert not location.is_relative_to(REPO)
    assert all((location.parent / "service" / "ui" / f).is_file() for f in ("index.html", "app.js", "style.css"))


def test_embed_and_mine_with_the_installed_package(fresh_venv: Path, tiny_store: Path, tmp_path: Path) -> None:
    script = tmp_path / "mine.py"
    script.write_text(MINE, encoding="utf-8")
    python = str(fresh_venv / "bin" / "python")
    answer = json.loads(_run([python, str(script), str(tiny_store), json.dumps(TEXTS)], tmp_path))
    assert Path(answer["xalign"]).is_relative_to(fresh_venv) and answer["finders"] == []
    assert sorted(answer["pairs"]) == [[i, i] for i in range(len(TEXTS))]
