"""The lossy delta encodings: what each keeps, what it loses, and that decoding gives the same bits each time."""

from __future__ import annotations

import pytest
import torch

from xalign.training.delta_codec import Compression, choose, decode, encode


def _low_rank_change(rows: int, cols: int, rank: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(rows, cols, generator=g)
    change = 0.01 * torch.randn(rows, rank, generator=g) @ torch.randn(rank, cols, generator=g)  # rank `rank`
    return base, base + change


def _lost(decoded: torch.Tensor, trained: torch.Tensor, base: torch.Tensor) -> float:
    return float((decoded - trained).norm() / (trained - base).norm())


def test_lowrank_keeps_a_change_of_its_rank_and_loses_a_higher_one() -> None:
    base, trained = _low_rank_change(96, 48, rank=4)
    kept = decode("lowrank", encode("lowrank", trained, base, Compression(rank=4)), base)
    assert _lost(kept, trained, base) < 2e-3  # only the float16 rounding of the factors
    cut = decode("lowrank", encode("lowrank", trained, base, Compression(rank=2)), base)
    assert _lost(cut, trained, base) > 0.1


def test_lowrank_decoding_gives_the_same_bits_whatever_the_threads() -> None:
    base, trained = _low_rank_change(200, 120, rank=16, seed=1)
    parts = encode("lowrank", trained, base, Compression(rank=16))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = decode("lowrank", parts, base)
        torch.set_num_threads(max(threads, 2))
        many = decode("lowrank", parts, base)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, many) and one.dtype == torch.float32
    reference = (base.double() + parts["a"].double() @ parts["b"].double()).float()
    assert torch.allclose(one, reference, rtol=0, atol=1e-6)


def test_rows_keep_the_moved_rows_and_scale_the_rest() -> None:
    g = torch.Generator().manual_seed(2)
    base = torch.randn(50, 8, generator=g)
    trained = base * 0.999
    moved = [3, 17, 40]
    trained[moved] += 0.05 * torch.randn(3, 8, generator=g)
    parts = encode("rows", trained, base, Compression(rank=4, embedding_rows=3))
    assert parts["index"].tolist() == moved
    decoded = decode("rows", parts, base)
    assert torch.allclose(decoded[moved], trained[moved], atol=1e-3)
    untouched = [i for i in range(50) if i not in moved]
    assert torch.allclose(decoded[untouched], trained[untouched], atol=1e-5)
    assert torch.allclose(decode("rows", {**parts, "index": parts["index"][:0], "rows": parts["rows"][:0]}, base),
                          base * parts["scale"])  # fmt: skip


def test_residual_is_the_change_in_float16() -> None:
    base = torch.linspace(-1, 1, 64)
    trained = base + 1e-3 * torch.cos(torch.arange(64.0))
    decoded = decode("residual", encode("residual", trained, base, Compression(rank=1)), base)
    assert _lost(decoded, trained, base) < 1e-3 and not torch.equal(decoded, base)


@pytest.mark.parametrize(
    ("name", "shape", "encoding"),
    [
        ("embeddings.word_embeddings.weight", (1000, 32), "rows"),
        ("encoder.layer.0.intermediate.dense.weight", (64, 32), "lowrank"),  # 8 * 96 < 2048
        ("encoder.layer.0.attention.self.query.weight", (12, 12), "residual"),  # 8 * 24 > 144
        ("encoder.layer.0.output.LayerNorm.weight", (32,), "residual"),
    ],
)
def test_choose_picks_lowrank_only_where_it_is_smaller(name: str, shape: tuple[int, ...], encoding: str) -> None:
    assert choose(name, torch.zeros(shape), Compression(rank=8)) == encoding
    with pytest.raises(ValueError, match="rank must be >= 1"):
        Compression(rank=0)
