"""FAISS snapshots of one index generation: opening reads one file and replays only the log's tail.

A snapshot ``snapshot-<gen>.faiss`` sits beside the log it covers (``service/search/persistence.py``)::

    FAISS index (faiss.write_index) | text byte lengths u32 (rows,) | UTF-8 texts | header JSON
    | header length u32 | magic b"XIS1"

The header (:class:`SnapshotHeader`) names the generation and model version, the rows held and where
in the log they end (size, rows, offset and payload CRC-32 of the last record covered), and the CRC-32
of the FAISS bytes and texts. It is written as ``.snapshot-<gen>.tmp``, fsynced, renamed into place and
the folder fsynced, so a crash leaves the previous snapshot or the new one. The log stays the source of
truth: a snapshot that does not verify (checksum, sizes, row count, another generation or model
version, a log whose record at the recorded offset differs) is ignored with a warning and the index is
rebuilt from the whole log.

FAISS's ``IO_FLAG_MMAP`` is not used: indexes here keep growing, and an mmapped IVF's inverted lists are
read-only and an mmapped flat storage (``IO_FLAG_MMAP_IFC``) cannot grow: the next add aborts the process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import faiss
from pydantic import BaseModel

from xalign.modelstore.integrity import fsync_dir
from xalign.service.search.faiss_index import VectorIndex
from xalign.service.search.persistence import (
    IndexKind,
    IndexMeta,
    LogPosition,
    decode_texts,
    encode_texts,
    record_matches,
)

log = logging.getLogger("xalign.service")

SNAPSHOT_MAGIC = b"XIS1"
_TRAILER = struct.Struct("<I4s")  # header length, magic
# Fault injection for tests/e2e/test_index_crash.py: seconds to sleep half-way through writing a snapshot
# (after the FAISS bytes, before the texts, fsync and rename), so a SIGKILL can be aimed at that moment.
PAUSE_ENV = "XALIGN_TEST_SNAPSHOT_PAUSE_S"


@dataclass(frozen=True)
class SnapshotPolicy:
    """When to snapshot: after ``rows`` appended rows or ``build_s`` seconds of FAISS adds (0 turns one off)."""

    rows: int = 100_000
    build_s: float = 30.0

    def due(self, rows: int, build_s: float) -> bool:
        """Whether ``rows`` rows added in ``build_s`` seconds since the last snapshot call for a new one."""
        return rows > 0 and ((self.rows > 0 and rows >= self.rows) or (self.build_s > 0 and build_s >= self.build_s))


class SnapshotHeader(BaseModel):
    """What a snapshot holds and which log prefix it covers."""

    generation: int
    model_version: int
    dim: int
    kind: IndexKind
    rows: int
    log_size: int
    last_offset: int
    last_crc: int
    faiss_bytes: int
    texts_bytes: int
    crc: int

    def position(self) -> LogPosition:
        """Where in the log the snapshot's rows end."""
        return LogPosition(self.log_size, self.rows, self.last_offset, self.last_crc)


def snapshot_name(generation: int) -> str:
    """File name of the snapshot of ``generation``."""
    return f"snapshot-{generation}.faiss"


class _Checksummed:
    """A file wrapper counting and checksumming the bytes written or read (reads stop at ``limit``)."""

    def __init__(self, stream: BinaryIO, limit: int = 0) -> None:
        self.stream, self.limit = stream, limit
        self.count = self.crc = 0

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.count += len(data)

    def read(self, size: int) -> bytes:
        data = self.stream.read(max(0, min(size, self.limit - self.count)))
        self.crc = zlib.crc32(data, self.crc)
        self.count += len(data)
        return data


def write_snapshot(folder: Path, meta: IndexMeta, index: VectorIndex, texts: list[str], position: LogPosition) -> None:
    """Write the snapshot of ``meta.generation``: ``index`` holding ``texts`` (rows), the log up to ``position``."""
    tmp = folder / f".snapshot-{meta.generation}.tmp"
    try:
        with tmp.open("wb") as out:
            body = _Checksummed(out)
            faiss.write_index(index.cpu_index(), faiss.PyCallbackIOWriter(body.write))
            faiss_bytes = body.count
            _pause_for_tests(out)
            body.write(encode_texts(texts))
            header = SnapshotHeader(
                generation=meta.generation, model_version=meta.model_version, dim=meta.dim, kind=meta.kind,
                rows=position.rows, log_size=position.size, last_offset=position.last_offset,
                last_crc=position.last_crc, faiss_bytes=faiss_bytes, texts_bytes=body.count - faiss_bytes,
                crc=body.crc,
            )  # fmt: skip
            encoded = header.model_dump_json().encode()
            out.write(encoded + _TRAILER.pack(len(encoded), SNAPSHOT_MAGIC))
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(folder / snapshot_name(meta.generation))
        fsync_dir(folder)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _pause_for_tests(out: BinaryIO) -> None:
    delay = os.environ.get(PAUSE_ENV)
    if delay:
        out.flush()  # the half-written file is on disk while the process sleeps
        time.sleep(float(delay))


def read_snapshot(folder: Path, meta: IndexMeta, log_path: Path) -> tuple[VectorIndex, list[str], LogPosition] | None:
    """The index, texts and log position of ``meta``'s snapshot, or None if there is none or it does not verify."""
    path = folder / snapshot_name(meta.generation)
    if not path.is_file():
        return None
    try:
        with path.open("rb") as stream:
            header = _read_header(stream, path.stat().st_size)
            _check_covers(header, meta, log_path)
            index, texts = _read_body(stream, header, meta)
    except (OSError, ValueError, RuntimeError, struct.error, UnicodeDecodeError) as exc:
        log.warning("%s does not verify and is ignored; the index is rebuilt from its log: %s", path, exc)
        return None
    return index, texts, header.position()


def _read_header(stream: BinaryIO, size: int) -> SnapshotHeader:
    if size < _TRAILER.size:
        raise ValueError("too short for a snapshot")
    stream.seek(size - _TRAILER.size)
    length, magic = _TRAILER.unpack(stream.read(_TRAILER.size))
    if magic != SNAPSHOT_MAGIC or length > size - _TRAILER.size:
        raise ValueError("no snapshot trailer")
    stream.seek(size - _TRAILER.size - length)
    header = SnapshotHeader.model_validate_json(stream.read(length))
    if header.faiss_bytes + header.texts_bytes + length + _TRAILER.size != size:
        raise ValueError("section sizes do not add up to the file size")
    return header


def _check_covers(header: SnapshotHeader, meta: IndexMeta, log_path: Path) -> None:
    """``ValueError`` unless the snapshot is of ``meta``'s generation and its log prefix is the log's."""
    mine = (meta.generation, meta.model_version, meta.dim, meta.kind)
    theirs = (header.generation, header.model_version, header.dim, header.kind)
    if mine != theirs:
        raise ValueError(f"it is of (generation, version, dim, kind) {theirs}, the index is {mine}")
    if log_path.stat().st_size < header.log_size or not record_matches(log_path, header.position()):
        raise ValueError("the log does not hold the records it covers")


def _read_body(stream: BinaryIO, header: SnapshotHeader, meta: IndexMeta) -> tuple[VectorIndex, list[str]]:
    stream.seek(0)
    body = _Checksummed(stream, limit=header.faiss_bytes)
    stored: Any = faiss.read_index(faiss.PyCallbackIOReader(body.read))
    if body.count != header.faiss_bytes:
        raise ValueError("the FAISS index does not fill its section")
    body.limit += header.texts_bytes
    texts = decode_texts(body.read(header.texts_bytes), header.rows)
    if body.crc != header.crc:
        raise ValueError("checksum mismatch")
    if stored.ntotal != header.rows:
        raise ValueError(f"the FAISS index holds {stored.ntotal} rows, the header {header.rows}")
    return VectorIndex.restore(meta.dim, meta.kind, meta.params, stored), texts


def remove_snapshots(folder: Path, keep: int | None) -> None:
    """Delete snapshots (and half-written ones) of every generation but ``keep`` (all when None)."""
    for path in [*folder.glob("snapshot-*.faiss"), *folder.glob(".snapshot-*.tmp")]:
        if keep is None or path.name != snapshot_name(keep):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
