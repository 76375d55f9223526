from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from modelstore import ModelStore
from modelstore.cli import main

from .conftest import make_files, make_spec

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    store = ModelStore(tmp_path / "store")
    for i in range(2):
        store.publish("m", make_spec(), make_files(tmp_path / f"src{i}", b"%d" % i))
    return store.root


def test_list_show_promote_rollback(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--store", str(store_dir)]
    assert main([*base, "promote", "m", "1"]) == 0
    assert main([*base, "promote", "m", "2"]) == 0
    assert main([*base, "list"]) == 0
    assert "m: versions [1, 2]; production=2" in capsys.readouterr().out
    assert main([*base, "rollback", "m"]) == 0
    assert "m@production -> 1" in capsys.readouterr().out
    assert main([*base, "show", "m"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1


def test_verify_reports_the_corrupt_file_and_fails(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--store", str(store_dir), "verify"]) == 0
    (store_dir / "m" / "2" / "model.onnx").write_bytes(b"tampered")
    assert main(["--store", str(store_dir), "verify"]) == 1
    out = capsys.readouterr().out
    assert "ok   m:1" in out
    assert "FAIL m:2" in out
    assert "model.onnx" in out


def test_errors_exit_2_with_a_message(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--store", str(store_dir), "show", "nope"]) == 2
    assert "no model named 'nope'" in capsys.readouterr().err


def test_console_script_is_installed() -> None:
    out = subprocess.run([str(REPO / ".venv/bin/xalign-store"), "--help"], capture_output=True, text=True, check=True)
    assert "promote" in out.stdout
