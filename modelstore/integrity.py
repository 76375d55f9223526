"""Checksums and durable writes: sha256 of files, verification against a manifest, fsync helpers."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from xalign.modelstore.errors import CorruptFileError
from xalign.modelstore.manifest import FileEntry

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks so large models need little memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: Path) -> FileEntry:
    """Checksum and size of ``path`` as a manifest entry."""
    return FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size)


def verify_files(version_dir: Path, files: dict[str, FileEntry]) -> None:
    """Raise ``CorruptFileError`` naming the first file that is missing or differs from its entry."""
    for relative, entry in sorted(files.items()):
        path = version_dir / relative
        shown = str(path)
        if not path.is_file():
            raise CorruptFileError(shown, "file is missing")
        size = path.stat().st_size
        if size != entry.bytes:
            raise CorruptFileError(shown, f"size {size} bytes, manifest says {entry.bytes}")
        actual = sha256_file(path)
        if actual != entry.sha256:
            raise CorruptFileError(shown, f"sha256 {actual[:12]}… does not match the manifest's {entry.sha256[:12]}…")


def fsync_file(path: Path) -> None:
    """Flush a file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a directory entry table, so a rename or a new file inside it survives a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically: temp file beside it, fsync, rename, fsync the folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    fsync_dir(path.parent)
