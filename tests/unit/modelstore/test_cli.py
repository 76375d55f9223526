from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from store_specs import make_files, make_spec, scores

from xalign.modelstore import ModelStore
from xalign.modelstore.cli import main

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    store = ModelStore(tmp_path / "store")
    for i in range(2):
        store.publish(
            "m",
            make_spec(evaluation=scores(50.0 + i, 50.0, 50.0 + 2 * i, 40.0)),
            make_files(tmp_path / f"src{i}", b"%d" % i),
        )
    return store.root


def test_list_show_promote_rollback(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--store", str(store_dir)]
    assert main([*base, "promote", "m", "1"]) == 0
    assert main([*base, "promote", "m", "2"]) == 0  # better: passes the gate
    assert main([*base, "list"]) == 0
    assert "m: versions [1, 2]; production=2" in capsys.readouterr().out
    assert main([*base, "rollback", "m"]) == 0
    assert "m@production -> 1" in capsys.readouterr().out
    assert main([*base, "show", "m"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1


def test_promote_refuses_a_worse_version_with_the_table_until_forced(
    store_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--store", str(store_dir)]
    store = ModelStore(store_dir)
    store.publish("m", make_spec(evaluation=scores(49.0, 48.0, 50.0, 40.0)), make_files(tmp_path / "src3", b"3"))
    assert main([*base, "promote", "m", "1"]) == 0
    capsys.readouterr()
    assert main([*base, "promote", "m", "3", "--actor", "ci"]) == 1
    out, err = capsys.readouterr()
    assert "tatoeba" in out and "FAIL" in out and "-2.00" in out  # the table of differences
    assert "m:3 is not promoted" in err and "--force" in err
    assert store.aliases("m") == {"production": 1}
    assert main([*base, "promote", "m", "3", "--max-direction-loss", "3", "--min-mean-delta", "-2"]) == 0
    assert main([*base, "rollback", "m"]) == 0
    assert main([*base, "promote", "m", "3", "--force", "--actor", "ops@box"]) == 0
    assert "m:3 is production (forced)" in capsys.readouterr().out
    assert main([*base, "promote", "m", "1", "--alias", "staging"]) == 0  # other aliases are not gated
    capsys.readouterr()
    assert main([*base, "history", "m"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "initial" in lines[0] and "rollback" in lines[2] and "not gated" in lines[2]
    assert "force" in lines[3] and "ops@box" in lines[3] and "failed (forced)" in lines[3]
    assert "m@production: 3 (rollback goes to 1)" in lines
    # The rollback is not gated: it goes back to version 1 whatever the numbers say.
    assert main([*base, "rollback", "m"]) == 0 and store.aliases("m")["production"] == 1
    capsys.readouterr()
    assert main([*base, "history", "m", "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["action"] for e in events] == ["initial", "promote", "rollback", "force", "set", "rollback"]
    assert events[3]["actor"] == "ops@box" and events[0]["at"].endswith("Z")


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
