"""Backpack export: the four-output ONNX graph, parity with PyTorch, senses.npz, publishing."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from tiny_backpack import DIM, MAX_LEN, SENSES, build_backpack_dir, publish_tiny_backpack, tiny_texts
from tokenizers import Tokenizer

from xalign.export.backpack import BACKPACK
from xalign.export.backpack_graph import BackpackGraph, export_backpack
from xalign.export.family import Outputs
from xalign.export.parity import (
    ParityError,
    ParityResult,
    batch_vs_single,
    check_parity,
    open_session,
    parity_key,
    require_parity,
    run_onnx,
    run_torch,
)
from xalign.export.senses_table import build_senses_table
from xalign.modelstore import Manifest, ModelStore, ParityReport
from xalign.modelstore.artifacts import BACKPACK_OUTPUTS, read_senses, write_senses
from xalign.modelstore.refs import parse_ref
from xalign.runtime.tokenization import Batch, TextTokenizer
from xalign.training.models.backpack import load_backpack

TEXTS = [
    "A man in a red hat.",
    "Zwei Hunde spielen im Schnee.",
    "ok",
    "Привет 🙂",
    "Several men in hard hats are operating a giant pulley system near a big white building today.",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_backpack_dir(tmp_path_factory.mktemp("backpack"), seed=0)


@pytest.fixture(scope="module")
def graph(model_dir: Path) -> BackpackGraph:
    return BackpackGraph(load_backpack(model_dir))


@pytest.fixture(scope="module")
def onnx_path(published: tuple[Path, Manifest]) -> Path:
    """The published graph: one export (the slow step, ~10 s) serves every test."""
    return ModelStore(published[0]).load(parse_ref("tiny-backpack")).file("model.onnx")


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path) -> TextTokenizer:
    return TextTokenizer(model_dir / "tokenizer.json", MAX_LEN)


def _onnx(onnx_path: Path, batch: Batch) -> Outputs:
    return run_onnx(open_session(onnx_path), batch, BACKPACK_OUTPUTS)


def _parity(graph: BackpackGraph, onnx_path: Path, tokenizer: TextTokenizer, texts: list[str]) -> ParityResult:
    return check_parity(BACKPACK, graph, {"fp32": onnx_path}, tokenizer, texts)


@pytest.fixture(scope="module")
def published(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    store = tmp_path_factory.mktemp("store")
    return store, publish_tiny_backpack(model_dir, store)


def test_graph_interface_has_four_outputs_and_dynamic_axes(onnx_path: Path) -> None:
    graph = onnx.load(str(onnx_path)).graph
    assert [v.name for v in graph.input] == ["input_ids", "attention_mask"]
    assert [v.name for v in graph.output] == list(BACKPACK_OUTPUTS)
    for value in graph.input:
        assert all(d.dim_param for d in value.type.tensor_type.shape.dim)  # batch and sequence symbolic
    ranks = [len(v.type.tensor_type.shape.dim) for v in graph.output]
    assert ranks == [2, 3, 4, 4]


def test_export_refuses_an_opset_below_18(graph: BackpackGraph, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="opset"):
        export_backpack(graph, tmp_path / "model.onnx", opset=17)


def test_onnx_matches_pytorch_on_every_output(graph: BackpackGraph, onnx_path: Path, tokenizer: TextTokenizer) -> None:
    result = _parity(graph, onnx_path, tokenizer, TEXTS + tiny_texts()[:20])
    for name in BACKPACK_OUTPUTS:
        key = parity_key("fp32", name)
        assert result.reports[key].min_cosine > 0.99999, name
        assert result.reports[key].max_abs_diff < 1e-5, name
        assert result.batch_vs_single[key] < 1e-5, name
    require_parity(result)


def test_onnx_shapes_and_alpha_on_a_padded_batch(onnx_path: Path, tokenizer: TextTokenizer) -> None:
    batch = tokenizer(TEXTS)
    out = _onnx(onnx_path, batch)
    n, seq = batch.input_ids.shape
    assert out["sentence_embedding"].shape == (n, DIM)
    assert out["contextual"].shape == (n, seq, DIM)
    assert out["senses"].shape == (n, seq, SENSES, DIM)
    assert out["alpha"].shape == (n, SENSES, seq, seq)
    real = batch.attention_mask.astype(bool)  # (n, seq)
    means = np.stack([out["contextual"][row][real[row]].mean(axis=0) for row in range(n)])  # (n, d)
    expected = means / np.linalg.norm(means, axis=1, keepdims=True)
    np.testing.assert_allclose(out["sentence_embedding"], expected, rtol=1e-4, atol=1e-6)
    allowed = np.tril(np.ones((seq, seq), dtype=bool))[None, None] & real[:, None, None, :]
    assert np.all(out["alpha"][~np.broadcast_to(allowed, out["alpha"].shape)] == 0)
    row_sums = out["alpha"].sum(axis=-1).transpose(0, 2, 1)[real]  # (tokens, k)
    np.testing.assert_allclose(row_sums, 1.0, rtol=1e-5)


def test_a_text_alone_and_in_a_padded_batch_agree(onnx_path: Path, tokenizer: TextTokenizer) -> None:
    batch = tokenizer(TEXTS)
    together = _onnx(onnx_path, batch)
    alone = _onnx(onnx_path, tokenizer([TEXTS[2]]))
    length = int(batch.attention_mask[2].sum())
    assert length < batch.input_ids.shape[1]  # the text really is padded in the batch
    np.testing.assert_allclose(together["alpha"][2, :, :length, :length], alone["alpha"][0], atol=1e-6)
    np.testing.assert_allclose(together["contextual"][2, :length], alone["contextual"][0], atol=1e-6)
    session = open_session(onnx_path)
    assert max(batch_vs_single(BACKPACK, session, tokenizer, tokenizer.encode_ids(TEXTS), sample=4).values()) < 1e-5


def test_parity_refuses_a_graph_that_differs(graph: BackpackGraph, onnx_path: Path, tokenizer: TextTokenizer) -> None:
    broken = BackpackGraph(copy.deepcopy(graph.model))  # the shared fixture stays intact
    with torch.no_grad():
        broken.model.sense_weights.query.weight.mul_(-20.0)
    result = _parity(broken, onnx_path, tokenizer, TEXTS)
    assert result.reports["fp32.alpha"].max_abs_diff > 1e-3
    with pytest.raises(ParityError, match="does not match PyTorch"):
        require_parity(result)


def test_parity_refuses_padding_leaks() -> None:
    report = {"texts": 1, "min_cosine": 1.0, "max_abs_diff": 0.0}
    keys = [parity_key("fp32", name) for name in BACKPACK_OUTPUTS]
    result = ParityResult(
        texts=1,
        truncated=0,
        reports={key: ParityReport(**report) for key in keys},
        batch_vs_single={**dict.fromkeys(keys, 0.0), "fp32.senses": 1e-3},
    )
    with pytest.raises(ParityError, match="senses differs"):
        require_parity(result)


def test_logits_decompose_into_sense_contributions(graph: BackpackGraph, tokenizer: TextTokenizer) -> None:
    batch = tokenizer(TEXTS[:1])
    out = run_torch(BACKPACK, graph, batch)
    table = build_senses_table(graph.model, n_top=3)
    last = batch.input_ids.shape[1] - 1
    # contribution[j, l, w] = alpha[l, last, j] * C(x_j)[l] . E_w
    contribution = np.einsum("lj,jld,wd->jlw", out["alpha"][0, :, last], out["senses"][0], table.output_embedding)
    with torch.inference_mode():
        logits = graph.model(torch.from_numpy(batch.input_ids)).logits[0, last].numpy()
    np.testing.assert_allclose(contribution.sum(axis=(0, 1)), logits, rtol=1e-4, atol=1e-5)


def test_senses_table_equals_brute_force(graph: BackpackGraph, tmp_path: Path) -> None:
    model = graph.model
    vocab = model.config.vocab_size
    # A small chunk budget: 57 tokens per chunk, so several chunks and a ragged last one.
    assert vocab % 57 != 0
    table = build_senses_table(model, n_top=5, chunk_elements=57 * SENSES * vocab)
    with torch.inference_mode():
        senses = model.senses(torch.arange(vocab)).double().numpy()  # (vocab, k, d)
        embedding = model.embed.weight.double().numpy()  # (vocab, d)
    scores = np.einsum("tld,wd->tlw", senses, embedding)  # (vocab, k, vocab)
    expected = np.argsort(-scores, axis=-1, kind="stable")[..., :5]
    assert table.top_ids.dtype == np.int32 and table.top_scores.dtype == np.float32
    np.testing.assert_array_equal(table.top_ids, expected)
    np.testing.assert_allclose(table.top_scores, np.take_along_axis(scores, expected, axis=-1), rtol=1e-4, atol=1e-6)
    loaded = read_senses(write_senses(table, tmp_path / "senses.npz"))
    np.testing.assert_array_equal(loaded.top_ids, table.top_ids)
    np.testing.assert_array_equal(loaded.output_embedding, model.embed.weight.detach().numpy())
    assert (loaded.n_senses, loaded.n_top) == (SENSES, 5)


def test_published_manifest_and_files(published: tuple[Path, Manifest]) -> None:
    store, manifest = published
    assert manifest.family == BACKPACK.name == "backpack"
    assert manifest.embedding_dim == DIM
    assert (manifest.pooling, manifest.normalize, manifest.text_prefix) == ("mean", True, "")
    assert manifest.max_seq_length == MAX_LEN
    assert manifest.onnx.outputs == list(BACKPACK_OUTPUTS)
    assert manifest.onnx.variants == {"fp32": "model.onnx"}
    assert sorted(manifest.files) == ["model.onnx", "senses.npz", "tokenizer.json"]
    assert set(manifest.parity) == {"fp32", "fp32.contextual", "fp32.senses", "fp32.alpha"}
    assert all(report.min_cosine > 0.9999 for report in manifest.parity.values())
    version = ModelStore(store).load(parse_ref("tiny-backpack"))  # verifies every sha256
    table = read_senses(version.path / "senses.npz")
    vocab = Tokenizer.from_file(str(version.path / "tokenizer.json")).get_vocab_size()
    assert table.top_ids.shape == (vocab, SENSES, 5)
    assert table.output_embedding.shape == (vocab, DIM)


def test_republishing_the_same_checkpoint_is_a_no_op(published: tuple[Path, Manifest], model_dir: Path) -> None:
    store, manifest = published
    again = publish_tiny_backpack(model_dir, store)
    assert again.version == manifest.version == 1
