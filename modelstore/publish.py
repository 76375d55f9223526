"""Atomic publishing of a new immutable version.

The files are copied into a hidden temporary sibling (``<name>/.tmp-<uuid>``),
fsynced and verified; then the folder is renamed to the next free version number.
``rename(2)`` of a directory onto an existing non-empty one fails, so two publishers
racing for the same number cannot both win: the loser rewrites its manifest with
the next number and tries again. A crash at any point leaves at most a hidden
temporary folder, never a partial version. The publisher holds an exclusive ``flock`` on
its temporary folder until it is renamed, so ``modelstore.gc`` can tell a live
publisher's folder (locked) from a dead one's (the kernel drops the lock with the process).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from xalign.modelstore.errors import PublishError
from xalign.modelstore.integrity import file_entry, fsync_dir, fsync_file, verify_files, write_atomic
from xalign.modelstore.layout import TMP_PREFIX, existing_versions
from xalign.modelstore.manifest import MANIFEST_FILE, FileEntry, Manifest, ModelSpec, build_manifest
from xalign.modelstore.names import validate_name

# Called after each file lands in the temporary folder (tests use it to kill a publisher mid-write).
ProgressHook = Callable[[str], None]

_MAX_ATTEMPTS = 1000


def publish(
    store_root: Path,
    name: str,
    spec: ModelSpec,
    files: Mapping[str, Path],
    on_file: ProgressHook | None = None,
) -> Manifest:
    """Publish ``files`` (store-relative name → source path) as the next version of ``name``.

    Returns the manifest as written. Raises ``PublishError`` if a file cannot be
    copied or verified; the store is then unchanged.
    """
    validate_name(name)
    if MANIFEST_FILE in files:
        raise PublishError(f"{MANIFEST_FILE} is written by the store, not passed in")
    model_dir = Path(store_root) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / f"{TMP_PREFIX}{uuid.uuid4().hex}"
    tmp.mkdir()
    held = hold_folder(tmp)
    try:
        entries = _stage_files(tmp, files, on_file)
        return _claim_version(model_dir, tmp, name, spec, entries)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(held)


def hold_folder(folder: Path) -> int:
    """Take an exclusive ``flock`` on ``folder`` (it follows the folder through the rename); the descriptor."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    # A filesystem without flock: publishing still works, gc then relies on its grace period alone.
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _stage_files(tmp: Path, files: Mapping[str, Path], on_file: ProgressHook | None) -> dict[str, FileEntry]:
    """Copy, fsync and checksum every file into the temporary folder."""
    entries: dict[str, FileEntry] = {}
    for relative, source in sorted(files.items()):
        _check_relative(relative)
        target = tmp / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(source, target)
        except OSError as exc:
            raise PublishError(f"cannot copy {source}: {exc.strerror}") from exc
        fsync_file(target)
        entries[relative] = file_entry(Path(source))
        if on_file is not None:
            on_file(relative)
    # Re-read what landed: a copy that differs from its source must never be published.
    try:
        verify_files(tmp, entries)
    except Exception as exc:
        raise PublishError(f"staged copy failed verification: {exc}") from exc
    return entries


def _check_relative(relative: str) -> None:
    parts = Path(relative).parts
    if not parts or Path(relative).is_absolute() or ".." in parts:
        raise PublishError(f"file name {relative!r} escapes the version folder")


def _claim_version(model_dir: Path, tmp: Path, name: str, spec: ModelSpec, entries: dict[str, FileEntry]) -> Manifest:
    """Write the manifest for the next free number and rename the folder onto it, retrying on a race."""
    version = max(existing_versions(model_dir), default=0) + 1
    for _ in range(_MAX_ATTEMPTS):
        manifest = build_manifest(spec, name, version, entries)
        write_atomic(tmp / MANIFEST_FILE, manifest.to_json())
        fsync_dir(tmp)
        try:
            tmp.rename(model_dir / str(version))
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise PublishError(f"cannot rename into place: {exc.strerror}") from exc
            version = max(existing_versions(model_dir), default=version) + 1
            continue
        fsync_dir(model_dir)
        return manifest
    raise PublishError(f"could not claim a version number for {name} after {_MAX_ATTEMPTS} attempts")
