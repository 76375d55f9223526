"""On-disk format of one persistent index: a metadata file and an append-only, checksummed vector log.

Layout of ``<data_dir>/indexes/<name>/``::

    meta.json            IndexMeta; replaced atomically (temp file, fsync, rename, fsync of the folder)
    vectors-<gen>.log    the records of generation <gen> (the one meta.json names); other generations
                         are leftovers of an interrupted re-embedding and are deleted on open

A log is a sequence of records, each one add (or one chunk of a re-embedding), all little-endian::

    header   magic b"XIR1" (4 bytes) | payload length u64 | CRC-32 of the payload u32     (16 bytes)
    payload  first id u64 | n u32 | dim u32 | vectors float32 (n, dim) | text byte lengths u32 (n,) | UTF-8 texts

Ids are consecutive: a record holds ids ``first_id .. first_id + n - 1`` and the first id of each
record is the count of rows before it, so an id is a row number and never changes. A record is written
with one ``write`` and fsynced before the add is acknowledged. A process killed mid-append leaves a
torn record at the tail: its header, length or checksum does not verify, and opening truncates the file
back to the last complete record, so an index loses at most the add that was under way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from xalign.modelstore.integrity import fsync_dir

log = logging.getLogger("xalign.service")

MAGIC = b"XIR1"
_HEADER = struct.Struct("<4sQI")  # magic, payload length, crc32
_PREFIX = struct.Struct("<QII")  # first id, n, dim
META_FILE = "meta.json"

IndexKind = Literal["flat", "ivf", "hnsw"]
FloatArray = npt.NDArray[np.float32]


class IndexMeta(BaseModel):
    """What an index is: its name, the model version that embedded it, its FAISS kind and parameters."""

    schema_version: int = 1
    name: str
    model: str
    model_version: int
    dim: int = Field(ge=1)
    kind: IndexKind
    params: dict[str, int] = Field(default_factory=dict)
    # The log generation in use; a re-embedding writes generation + 1, then switches by rewriting this file.
    generation: int = 0
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def log_name(self) -> str:
        """File name of this generation's vector log."""
        return log_name(self.generation)


def log_name(generation: int) -> str:
    """File name of the vector log of ``generation``."""
    return f"vectors-{generation}.log"


@dataclass(frozen=True)
class Record:
    """One log record: rows ``first_id ..`` with their unit vectors (n, dim) float32 and texts (n,)."""

    first_id: int
    vectors: FloatArray
    texts: list[str]


def write_meta(folder: Path, meta: IndexMeta) -> None:
    """Replace ``folder/meta.json`` atomically: a crash leaves the old file or the new one, never a mix."""
    tmp = folder / f".{META_FILE}.tmp"
    with tmp.open("wb") as out:
        out.write(meta.model_dump_json(indent=2).encode())
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(folder / META_FILE)
    fsync_dir(folder)


def read_meta(folder: Path) -> IndexMeta:
    """The metadata of the index in ``folder`` (raises ``ValueError`` if unreadable)."""
    return IndexMeta.model_validate(json.loads((folder / META_FILE).read_text()))


def encode_record(record: Record) -> bytes:
    """Header and payload of ``record``, ready for one ``write``."""
    vectors = np.ascontiguousarray(record.vectors, dtype="<f4")  # (n, dim)
    encoded = [t.encode("utf-8") for t in record.texts]
    lengths = np.array([len(b) for b in encoded], dtype="<u4")  # (n,)
    payload = b"".join(
        [
            _PREFIX.pack(record.first_id, vectors.shape[0], vectors.shape[1]),
            vectors.tobytes(),
            lengths.tobytes(),
            *encoded,
        ]
    )
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_payload(payload: bytes) -> Record:
    """The record a verified payload holds (raises ``ValueError`` if its sizes do not add up)."""
    first_id, n, dim = _PREFIX.unpack_from(payload, 0)
    start = _PREFIX.size
    vec_end = start + 4 * n * dim
    len_end = vec_end + 4 * n
    if len_end > len(payload):
        raise ValueError("record sizes exceed its payload")
    vectors = np.frombuffer(payload, dtype="<f4", count=n * dim, offset=start).reshape(n, dim).astype(np.float32)
    lengths = np.frombuffer(payload, dtype="<u4", count=n, offset=vec_end)
    texts, pos = [], len_end
    for length in lengths.tolist():
        texts.append(payload[pos : pos + length].decode("utf-8"))
        pos += length
    if pos != len(payload):
        raise ValueError("record texts do not fill its payload")
    return Record(first_id, vectors, texts)


def _read_records(stream: BinaryIO) -> Iterator[tuple[Record, int]]:
    """Verified records and the file offset after each; stops at the first torn or corrupt one."""
    offset = 0
    while True:
        header = stream.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        magic, size, crc = _HEADER.unpack(header)
        payload = stream.read(size) if magic == MAGIC else b""
        if magic != MAGIC or len(payload) != size or zlib.crc32(payload) != crc:
            return
        try:
            record = decode_payload(payload)
        except (ValueError, struct.error, UnicodeDecodeError):
            return
        offset += _HEADER.size + size
        yield record, offset


def replay(path: Path, dim: int) -> list[Record]:
    """Every complete record of the log at ``path``; a torn or corrupt tail is cut off the file (and logged)."""
    records: list[Record] = []
    valid = 0
    with path.open("rb") as stream:
        for record, end in _read_records(stream):
            if record.first_id != sum(len(r.texts) for r in records) or record.vectors.shape[1] != dim:
                break  # checksummed but out of sequence: nothing after it can be trusted either
            records.append(record)
            valid = end
    size = path.stat().st_size
    if size > valid:
        log.warning("%s: dropping %d bytes after the last complete record (interrupted write)", path, size - valid)
        with path.open("r+b") as out:
            out.truncate(valid)
            os.fsync(out.fileno())
    return records


class LogWriter:
    """Appends records to one log file, each fsynced before :meth:`append` returns. Not thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("ab")
        self._size = self._file.seek(0, os.SEEK_END)

    @classmethod
    def create(cls, path: Path) -> LogWriter:
        """A new empty log at ``path`` (replacing a leftover), made durable in its folder."""
        path.write_bytes(b"")
        fsync_dir(path.parent)
        return cls(path)

    def append(self, record: Record) -> None:
        """Write and fsync one record; on failure cut the file back so no partial record stays."""
        data = encode_record(record)
        try:
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError:
            with contextlib.suppress(OSError):
                self._file.truncate(self._size)
                self._file.seek(self._size)
            raise
        self._size += len(data)

    def close(self) -> None:
        """Close the file (everything appended is already durable)."""
        self._file.close()
