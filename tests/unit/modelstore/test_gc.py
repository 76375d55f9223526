"""``xalign-store gc``: a live publisher's temporary folder survives, leftovers of dead writers go."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

from store_specs import make_files, make_spec

from xalign.modelstore import ModelStore
from xalign.modelstore.cli import main
from xalign.modelstore.gc import collect, collect_at_start


def test_live_publisher_survives_dead_leftovers_go(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    store.publish("m", make_spec(), make_files(tmp_path / "src0", b"0"))
    store.promote("m", 1)
    model = store.root / "m"
    dead = model / ".tmp-0123abcd"  # no process holds it: what a killed publisher leaves
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "model.onnx").write_bytes(b"x" * 1000)
    stale = [model / ".aliases.json.4242.tmp", model / ".alias_history.json.4242.tmp"]
    for path in stale:
        path.write_text("{")
    staged, release = threading.Event(), threading.Event()

    def hold(_: str) -> None:  # the publisher stops after its first file until the test lets it go
        staged.set()
        assert release.wait(30)

    publisher = threading.Thread(
        target=store.publish, args=("m", make_spec(), make_files(tmp_path / "src1", b"1"), hold)
    )
    publisher.start()
    try:
        assert staged.wait(30)
        live = [p for p in model.glob(".tmp-*") if p != dead]
        report = collect(store.root, grace_s=0)
        assert report.live == live and len(live) == 1
        assert sorted(report.removed) == sorted([dead, *stale])
        assert live[0].is_dir() and not dead.exists() and not any(p.exists() for p in stale)
    finally:
        release.set()
        publisher.join(30)
    assert store.versions("m") == [1, 2]  # the publisher finished undisturbed
    assert list(model.glob(".tmp-*")) == []


def test_unlocked_folders_younger_than_the_grace_are_kept(tmp_path: Path) -> None:
    (tmp_path / "store" / "m" / ".tmp-young").mkdir(parents=True)
    report = collect(tmp_path / "store", grace_s=3600)
    assert report.young == [tmp_path / "store" / "m" / ".tmp-young"] and report.removed == []


def test_cli_gc_and_the_start_hook(tmp_path: Path) -> None:
    (tmp_path / "store" / "m" / ".tmp-dead").mkdir(parents=True)
    assert main(["--store", str(tmp_path / "store"), "gc", "--grace-s", "0"]) == 0
    assert not (tmp_path / "store" / "m" / ".tmp-dead").exists()
    # At service start it never raises: no store, or a store it cannot make sense of, is logged and skipped.
    assert collect_at_start(tmp_path / "missing") is None
    (tmp_path / "store" / "m" / "alias_history.json").write_text("{not json")
    assert collect_at_start(tmp_path / "store") is None


def test_the_service_collects_at_start(tiny_store: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient  # noqa: PLC0415

    from xalign.service.app import create_app  # noqa: PLC0415
    from xalign.service.settings import Settings  # noqa: PLC0415

    store = Path(shutil.copytree(tiny_store, tmp_path / "store"))
    dead = store / "tiny" / ".tmp-killed"
    dead.mkdir()
    os.utime(dead, (time.time() - 3600, time.time() - 3600))  # left an hour ago by a killed publisher
    with TestClient(create_app(Settings(store=store, threads=1))) as client:
        assert client.get("/ready").status_code == 200
    assert not dead.exists()
