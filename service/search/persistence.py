"""On-disk format of one persistent index: a metadata file and an append-only, checksummed vector log.

Layout of ``<data_dir>/indexes/<name>/``::

    meta.json            IndexMeta; replaced atomically (temp file, fsync, rename, fsync of the folder)
    vectors-<gen>.log    the records of generation <gen> (the one meta.json names); other generations
                         are leftovers of an interrupted re-embedding and are deleted on open
    snapshot-<gen>.faiss the FAISS index and texts of the log's first rows (``service/search/snapshot.py``):
                         opening reads it and replays only the records after it; the log stays the
                         source of truth, and a snapshot that does not verify is ignored

A log is a sequence of records, each one add (or one chunk of a re-embedding), all little-endian::

    header   magic b"XIR1" (4 bytes) | payload length u64 | CRC-32 of the payload u32     (16 bytes)
    payload  first id u64 | n u32 | dim u32 | vectors float32 (n, dim) | text byte lengths u32 (n,) | UTF-8 texts

Ids are consecutive: a record holds ids ``first_id .. first_id + n - 1`` and the first id of each
record is the count of rows before it, so an id is a row number and never changes. A record is written
with one ``write`` and fsynced before the add is acknowledged. A process killed mid-append leaves a
torn record at the tail: its header, length or checksum does not verify, and opening truncates the file
back to the last complete record, so an index loses at most the add that was under way. Replays read
one record at a time (:func:`scan`), from the start or from where a snapshot ends (:class:`LogPosition`).
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


def encode_texts(texts: list[str]) -> bytes:
    """Texts (n,) as their UTF-8 byte lengths u32 (n,) followed by the UTF-8 bytes."""
    encoded = [t.encode("utf-8") for t in texts]
    lengths = np.array([len(b) for b in encoded], dtype="<u4")  # (n,)
    return b"".join([lengths.tobytes(), *encoded])


def decode_texts(data: bytes, n: int, offset: int = 0) -> list[str]:
    """The ``n`` texts :func:`encode_texts` wrote at ``offset``; ``ValueError`` unless they end ``data`` exactly."""
    len_end = offset + 4 * n
    if len_end > len(data):
        raise ValueError("text lengths exceed their bytes")
    lengths = np.frombuffer(data, dtype="<u4", count=n, offset=offset)
    texts, pos = [], len_end
    for length in lengths.tolist():
        texts.append(data[pos : pos + length].decode("utf-8"))
        pos += length
    if pos != len(data):
        raise ValueError("texts do not fill their bytes")
    return texts


def encode_record(record: Record) -> bytes:
    """Header and payload of ``record``, ready for one ``write``."""
    vectors = np.ascontiguousarray(record.vectors, dtype="<f4")  # (n, dim)
    payload = b"".join(
        [
            _PREFIX.pack(record.first_id, vectors.shape[0], vectors.shape[1]),
            vectors.tobytes(),
            encode_texts(record.texts),
        ]
    )
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_payload(payload: bytes) -> Record:
    """The record a verified payload holds (raises ``ValueError`` if its sizes do not add up)."""
    first_id, n, dim = _PREFIX.unpack_from(payload, 0)
    start = _PREFIX.size
    vec_end = start + 4 * n * dim
    if vec_end > len(payload):
        raise ValueError("record sizes exceed its payload")
    vectors = np.frombuffer(payload, dtype="<f4", count=n * dim, offset=start).reshape(n, dim).astype(np.float32)
    return Record(first_id, vectors, decode_texts(payload, n, vec_end))


@dataclass
class LogPosition:
    """How far a log is known good: ``size`` bytes holding ``rows`` rows, the last record at ``last_offset``.

    The last record's offset and payload CRC-32 identify the log's prefix cheaply: a snapshot records them,
    and a log re-created since (an interrupted re-embedding started again) does not match them.
    """

    size: int = 0
    rows: int = 0
    last_offset: int = -1
    last_crc: int = 0

    def advance(self, size: int, rows: int, crc: int) -> None:
        """Account for one more record of ``size`` bytes (header included) holding ``rows`` rows."""
        self.last_offset, self.last_crc = self.size, crc
        self.size += size
        self.rows += rows


def _read_record(stream: BinaryIO) -> tuple[Record, int, int] | None:
    """The next verified record, its size with header and its CRC; None at the end or a torn/corrupt one."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    magic, size, crc = _HEADER.unpack(header)
    payload = stream.read(size) if magic == MAGIC else b""
    if magic != MAGIC or len(payload) != size or zlib.crc32(payload) != crc:
        return None
    try:
        return decode_payload(payload), _HEADER.size + size, crc
    except (ValueError, struct.error, UnicodeDecodeError):
        return None


def record_matches(path: Path, position: LogPosition) -> bool:
    """Whether the log at ``path`` holds, at ``position.last_offset``, a record ending at ``position.size``
    with the payload CRC ``position.last_crc`` (an empty prefix always matches)."""
    if position.last_offset < 0:
        return position.size == 0 and position.rows == 0
    with path.open("rb") as stream:
        stream.seek(position.last_offset)
        header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return False
    magic, size, crc = _HEADER.unpack(header)
    ends = position.last_offset + _HEADER.size + size == position.size
    return bool(magic == MAGIC and crc == position.last_crc and ends)


def scan(path: Path, dim: int, position: LogPosition) -> Iterator[Record]:
    """The complete records of ``path`` after ``position`` (advanced as they are read), in order.

    Stops at the first torn, corrupt or out-of-sequence record and cuts the file back to the last
    complete one (logged), so the next append starts clean. Records are read one at a time: a replay
    never holds the whole log in memory.
    """
    with path.open("rb") as stream:
        stream.seek(position.size)
        while (read := _read_record(stream)) is not None:
            record, size, crc = read
            if record.first_id != position.rows or record.vectors.shape[1] != dim:
                break  # checksummed but out of sequence: nothing after it can be trusted either
            position.advance(size, len(record.texts), crc)
            yield record
    _cut_torn_tail(path, position.size)


def _cut_torn_tail(path: Path, valid: int) -> None:
    size = path.stat().st_size
    if size > valid:
        log.warning("%s: dropping %d bytes after the last complete record (interrupted write)", path, size - valid)
        with path.open("r+b") as out:
            out.truncate(valid)
            os.fsync(out.fileno())


def replay(path: Path, dim: int) -> list[Record]:
    """Every complete record of the log at ``path``; a torn or corrupt tail is cut off the file (and logged)."""
    return list(scan(path, dim, LogPosition()))


class LogWriter:
    """Appends records to one log file, each fsynced before :meth:`append` returns. Not thread-safe."""

    def __init__(self, path: Path, position: LogPosition | None = None) -> None:
        self.path = path
        self._file = path.open("ab")
        # Where the verified records end (a scan's result); a fresh log has none.
        self.position = position if position is not None else LogPosition()

    @classmethod
    def create(cls, path: Path) -> LogWriter:
        """A new empty log at ``path`` (replacing a leftover), made durable in its folder."""
        path.write_bytes(b"")
        fsync_dir(path.parent)
        return cls(path)

    def append(self, record: Record) -> None:
        """Write and fsync one record; on failure cut the file back so no partial record stays."""
        data = encode_record(record)
        start = self.position.size
        try:
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError:
            with contextlib.suppress(OSError):
                self._file.truncate(start)
                self._file.seek(start)
            raise
        self.position.advance(len(data), len(record.texts), _HEADER.unpack_from(data)[2])

    def close(self) -> None:
        """Close the file (everything appended is already durable)."""
        self._file.close()
