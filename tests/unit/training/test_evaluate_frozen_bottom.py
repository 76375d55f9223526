"""``TransformersEncoder`` with ``frozen_cache``: the frozen bottom's states are stored once per text and reused.

Real code on the session's tiny 2-layer BERT (layer 0 frozen): cached vectors equal uncached ones, a model with
another top layer reuses the stored states, and a model with another bottom never does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from xalign.training.cli import main  # noqa: E402
from xalign.training.evaluate.encoder import TransformersEncoder  # noqa: E402

TEXTS = ["hello world", "the cat sat on the mat", "a dog", "dog ran far far away", "hello", "hello world"]


def _variant(source: Path, target: Path, layer: int) -> Path:
    """A copy of ``source`` whose encoder layer ``layer`` has other weights (tokenizer files copied as they are)."""
    shutil.copytree(source, target)
    model = transformers.AutoModel.from_pretrained(str(source))
    torch.manual_seed(7)
    with torch.no_grad():
        for parameter in model.encoder.layer[layer].parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
    model.save_pretrained(target)
    return target


def _cached(model: Path, cache: Path, batch_size: int = 2) -> TransformersEncoder:
    return TransformersEncoder(model, batch_size=batch_size, device="cpu", frozen_cache=cache, frozen_layers=1)


def test_cached_vectors_equal_uncached_and_are_computed_once(tiny_model_dir: Path, tmp_path: Path) -> None:
    plain = TransformersEncoder(tiny_model_dir, batch_size=2, device="cpu").encode(TEXTS)
    first = _cached(tiny_model_dir, tmp_path / "cache")
    np.testing.assert_allclose(first.encode(TEXTS), plain, atol=1e-5)
    assert first._bottom.cache.stored == 5  # the repeated text is stored once
    again = _cached(tiny_model_dir, tmp_path / "cache", batch_size=4)  # a new process: read from disk
    np.testing.assert_allclose(again.encode(TEXTS), plain, atol=1e-5)
    assert again._bottom.cache.stored == 0


def test_a_model_with_another_top_reuses_the_states(tiny_model_dir: Path, tmp_path: Path) -> None:
    other_top = _variant(tiny_model_dir, tmp_path / "top", layer=1)
    _cached(tiny_model_dir, tmp_path / "cache").encode(TEXTS)
    reused = _cached(other_top, tmp_path / "cache")
    out = reused.encode(TEXTS)
    assert reused._bottom.cache.stored == 0
    np.testing.assert_allclose(out, TransformersEncoder(other_top, device="cpu").encode(TEXTS), atol=1e-5)
    assert not np.allclose(out, TransformersEncoder(tiny_model_dir, device="cpu").encode(TEXTS), atol=1e-3)


def test_a_model_with_another_bottom_gets_its_own_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    other_bottom = _variant(tiny_model_dir, tmp_path / "bottom", layer=0)
    base = _cached(tiny_model_dir, tmp_path / "cache")
    base.encode(TEXTS)
    moved = _cached(other_bottom, tmp_path / "cache")
    out = moved.encode(TEXTS)
    assert moved._bottom.folder != base._bottom.folder and moved._bottom.cache.stored == 5
    np.testing.assert_allclose(out, TransformersEncoder(other_bottom, device="cpu").encode(TEXTS), atol=1e-5)


def test_the_frozen_depth_must_leave_a_top(tiny_model_dir: Path, tmp_path: Path) -> None:
    for layers in (0, 2):
        with pytest.raises(ValueError, match="between 1 and 1"):
            TransformersEncoder(tiny_model_dir, device="cpu", frozen_cache=tmp_path, frozen_layers=layers)


@pytest.mark.parametrize("extra", [["--frozen-cache", "x"], ["--frozen-layers", "1"], ["--store", "s", "--model", "m"]])
def test_cli_frozen_options_go_together(
    tiny_model_dir: Path, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    model = [] if "--store" in extra else ["--model-dir", str(tiny_model_dir)]
    frozen = ["--frozen-cache", "x", "--frozen-layers", "1"] if "--store" in extra else []
    code = main(["eval", *model, *extra, *frozen, "--tatoeba-dir", "t"])
    assert code == 2
    assert "--frozen-cache" in capsys.readouterr().err
