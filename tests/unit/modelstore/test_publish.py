"""Publishing is atomic, concurrent publishers get distinct versions, and corruption is caught at load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from store_specs import make_files, make_spec

from xalign.modelstore import CorruptFileError, ModelStore, PublishError
from xalign.modelstore.refs import parse_ref

REPO = Path(__file__).resolve().parents[3]


def _assert_store_healthy(store: ModelStore, name: str, versions: list[int]) -> None:
    """Only complete versions are visible, each verifies, and the default reference resolves."""
    assert store.versions(name) == versions
    for version in versions:
        store.load(parse_ref(f"{name}:{version}"))
    assert store.resolve(parse_ref(name)) == versions[-1]


def test_versions_count_up_and_verify(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    for expected in (1, 2, 3):
        manifest = store.publish("m", make_spec(), make_files(tmp_path / f"src{expected}", b"v%d" % expected))
        assert manifest.version == expected
    _assert_store_healthy(store, "m", [1, 2, 3])
    assert store.load(parse_ref("m:2")).file("model.onnx").read_bytes() == b"v2"


def test_exception_mid_publish_leaves_no_version(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    store.publish("m", make_spec(), make_files(tmp_path / "a"))

    def explode(relative: str) -> None:
        raise RuntimeError(f"disk full after {relative}")

    with pytest.raises(RuntimeError, match="disk full"):
        store.publish("m", make_spec(), make_files(tmp_path / "b"), on_file=explode)
    _assert_store_healthy(store, "m", [1])
    # The temporary folder was cleaned up, not left behind.
    assert [p.name for p in (tmp_path / "store" / "m").iterdir() if p.name.startswith(".tmp-")] == []
    assert store.publish("m", make_spec(), make_files(tmp_path / "c")).version == 2


def test_missing_source_file_is_a_publish_error(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    with pytest.raises(PublishError, match="cannot copy"):
        store.publish("m", make_spec(), {"model.onnx": tmp_path / "nope.onnx"})
    assert store.models() == []


@pytest.mark.parametrize("bad", ["../escape.onnx", "/abs/model.onnx", "manifest.json"])
def test_file_names_cannot_escape_or_overwrite_the_manifest(tmp_path: Path, bad: str) -> None:
    source = make_files(tmp_path / "src")["model.onnx"]
    with pytest.raises(PublishError):
        ModelStore(tmp_path / "store").publish("m", make_spec(), {bad: source})
    assert not (tmp_path / "escape.onnx").exists()


def test_flipped_byte_is_refused_with_the_file_named(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    store.publish("m", make_spec(), make_files(tmp_path / "src"))
    target = tmp_path / "store" / "m" / "1" / "model.onnx"
    data = bytearray(target.read_bytes())
    data[3] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match=r"model\.onnx.*sha256") as info:
        store.load(parse_ref("m"))
    assert info.value.path.endswith("model.onnx")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    store.publish("m", make_spec(), make_files(tmp_path / "src"))
    (tmp_path / "store" / "m" / "1" / "tokenizer.json").unlink()
    with pytest.raises(CorruptFileError, match=r"tokenizer\.json: file is missing"):
        store.load(parse_ref("m:1"))


_PUBLISHER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from store_specs import make_files, make_spec
    from xalign.modelstore import ModelStore

    store, src, marker, payload_mb = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    files = make_files(src, b"x" * (payload_mb << 20) + src.name.encode())

    def pause(relative):
        # Tell the parent a file has landed, then hang so the parent can kill us mid-publish.
        marker.write_text(relative)
        if payload_mb == 0:
            time.sleep(60)

    ModelStore(store).publish("m", make_spec(), files, on_file=pause if marker.name != "none" else None)
    """
)


def _publisher(tmp_path: Path, store: Path, tag: str, marker: str, payload_mb: int) -> subprocess.Popen[bytes]:
    # One script per publisher: rewriting a shared one while an earlier process is still reading it gave that
    # process an empty script, which "published" nothing and exited 0.
    script = tmp_path / f"publisher-{tag}.py"
    script.write_text(_PUBLISHER.format(tests=str(REPO / "tests" / "support")))
    return subprocess.Popen(
        [sys.executable, str(script), str(store), str(tmp_path / tag), str(tmp_path / marker), str(payload_mb)],
        cwd=REPO,
    )


def _wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_sigkill_between_files_leaves_no_version(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    store = ModelStore(store_dir)
    store.publish("m", make_spec(), make_files(tmp_path / "first"))
    proc = _publisher(tmp_path, store_dir, "killed", "marker", payload_mb=0)
    _wait_for(tmp_path / "marker")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    _assert_store_healthy(store, "m", [1])
    # A hidden temporary folder is all that is left, and the next publish is unaffected.
    assert any(p.name.startswith(".tmp-") for p in (store_dir / "m").iterdir())
    assert store.publish("m", make_spec(), make_files(tmp_path / "next")).version == 2


@pytest.mark.parametrize("delay", [0.05, 0.15, 0.3, 0.6])
def test_sigkill_at_any_moment_leaves_only_complete_versions(tmp_path: Path, delay: float) -> None:
    store_dir = tmp_path / "store"
    store = ModelStore(store_dir)
    store.publish("m", make_spec(), make_files(tmp_path / "first"))
    # A 64 MiB payload so the kill lands while bytes are being copied, fsynced or hashed.
    proc = _publisher(tmp_path, store_dir, "big", "none", payload_mb=64)
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    versions = store.versions("m")
    assert versions in ([1], [1, 2])
    _assert_store_healthy(store, "m", versions)


def test_eight_concurrent_publishers_get_eight_distinct_versions(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    procs = [_publisher(tmp_path, store_dir, f"p{i}", "none", payload_mb=1) for i in range(8)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 8
    store = ModelStore(store_dir)
    _assert_store_healthy(store, "m", list(range(1, 9)))
    # Each version holds exactly one publisher's payload: no two claimed the same number.
    tails = {store.load(parse_ref(f"m:{v}")).file("model.onnx").read_bytes()[-2:] for v in range(1, 9)}
    assert tails == {f"p{i}".encode() for i in range(8)}
