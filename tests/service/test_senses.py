"""``POST /v1/senses`` and backpack embeddings, served from a store holding a tiny Backpack beside the tiny BERT."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from error_body import assert_error
from fastapi.testclient import TestClient
from tiny_backpack import MAX_LEN, SENSES, build_backpack_dir, publish_tiny_backpack
from tokenizers import Tokenizer

from xalign.service.app import create_app
from xalign.service.registry import ModelRegistry
from xalign.service.settings import Settings
from xalign.training.models.backpack import load_backpack

BACKPACK = "tiny-backpack"
TEXT = "The cat sat on the mat."
KEY = "read-key"


@pytest.fixture(scope="module")
def backpack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_backpack_dir(tmp_path_factory.mktemp("tiny-backpack"), seed=0)


@pytest.fixture(scope="module")
def mixed_store(tiny_store: Path, backpack_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's tiny dual encoder (copied) and ``tiny-backpack`` version 1."""
    store = tmp_path_factory.mktemp("mixed") / "store"
    shutil.copytree(tiny_store, store)
    publish_tiny_backpack(backpack_dir, store, name=BACKPACK)
    return store


@pytest.fixture(scope="module")
def settings(mixed_store: Path) -> Settings:
    """Overrides tests/service/conftest.py's ``settings``, so its ``client`` serves the mixed store."""
    return Settings(store=mixed_store, threads=1, max_chars_per_input=2000, poll_interval_s=0)


@pytest.fixture(scope="module")
def version_dir(mixed_store: Path) -> Path:
    return mixed_store / BACKPACK / "1"


def senses(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/senses", json={"model": BACKPACK, "input": TEXT} | body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_models_list_shows_each_family(client: TestClient) -> None:
    cards = {card["name"]: card for card in client.get("/v1/models").json()["data"]}
    assert cards["tiny"]["family"] == "dual-encoder"
    assert cards[BACKPACK]["family"] == "backpack"
    assert cards[BACKPACK]["dimension"] == 16


def test_response_shape(client: TestClient) -> None:
    body = senses(client, top_words=3)
    assert set(body) == {"object", "model", "tokens", "next_word", "usage"}
    assert (body["object"], body["model"], body["next_word"]) == ("senses", f"{BACKPACK}:1", None)
    tokens = body["tokens"]
    assert body["usage"] == {"prompt_tokens": len(tokens), "total_tokens": len(tokens)}
    assert [t["position"] for t in tokens] == list(range(len(tokens)))
    # The tokenizer prepends <s> (id 2) and nothing else, so the last position is the last word.
    assert (tokens[0]["id"], tokens[0]["text"]) == (2, "<s>")
    assert "".join(t["text"] for t in tokens[1:]) == " " + TEXT
    for token in tokens:
        assert set(token) == {"position", "id", "text", "senses", "alpha"}
        assert [s["sense"] for s in token["senses"]] == list(range(SENSES))
        for sense in token["senses"]:
            assert sense["norm"] > 0
            assert 0 <= sense["weight"] <= 1
            assert len(sense["top_words"]) == 3


def test_default_model_is_the_first_backpack(client: TestClient) -> None:
    # ``tiny`` is the default model of /v1/embeddings; senses skip it for the backpack.
    response = client.post("/v1/senses", json={"input": TEXT})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == f"{BACKPACK}:1"


def test_alpha_rows_sum_to_one_over_earlier_positions(client: TestClient) -> None:
    tokens = senses(client)["tokens"]
    for token in tokens:
        assert len(token["alpha"]) == SENSES
        for row in token["alpha"]:
            assert len(row) == token["position"] + 1
            assert sum(row) == pytest.approx(1.0, abs=1e-5)
    # A sense's weight is what the last position gives it: the last token's alpha rows, column by column.
    for sense in range(SENSES):
        weights = [t["senses"][sense]["weight"] for t in tokens]
        assert weights == pytest.approx(tokens[-1]["alpha"][sense], abs=1e-6)


def test_next_word_contributions_sum_to_the_models_logit(client: TestClient, backpack_dir: Path) -> None:
    body = senses(client, next_word="dog", top_contributions=1000)
    tokens, scored = body["tokens"], body["next_word"]
    contributions = scored["contributions"]
    assert len(contributions) == len(tokens) * SENSES  # every (position, sense), none twice
    magnitudes = [abs(c["value"]) for c in contributions]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert sum(c["value"] for c in contributions) == pytest.approx(scored["logit"], rel=1e-4, abs=1e-5)
    # The logit is the PyTorch model's own logit for that token after the text (no final LayerNorm).
    model = load_backpack(backpack_dir)
    ids = torch.tensor([[t["id"] for t in tokens]])
    with torch.no_grad():
        expected = model(ids).logits[0, -1, scored["token_id"]].item()
    assert scored["logit"] == pytest.approx(expected, rel=1e-4, abs=1e-5)
    tokenizer = Tokenizer.from_file(str(backpack_dir / "tokenizer.json"))
    first = tokenizer.encode("dog", add_special_tokens=False).ids[0]
    assert (scored["token_id"], scored["word"]) == (first, tokenizer.decode([first]))


def test_top_contributions_cuts_the_ranked_list(client: TestClient) -> None:
    everything = senses(client, next_word="mat", top_contributions=1000)["next_word"]["contributions"]
    top = senses(client, next_word="mat", top_contributions=3)["next_word"]["contributions"]
    assert top == everything[:3]


def test_top_words_come_from_senses_npz(client: TestClient, version_dir: Path) -> None:
    tokens = senses(client, top_words=5)["tokens"]
    tokenizer = Tokenizer.from_file(str(version_dir / "tokenizer.json"))
    with np.load(version_dir / "senses.npz") as table:
        top_ids = table["top_ids"]
    for token in tokens:
        for sense in token["senses"]:
            ids = top_ids[token["id"], sense["sense"], :5]
            expected = [tokenizer.decode([int(w)], skip_special_tokens=False) for w in ids]
            assert sense["top_words"] == expected


def test_embeddings_of_a_backpack_are_unit_vectors_and_batch_equals_single(client: TestClient) -> None:
    texts = ["The cat sat on the mat.", "Der Hund schläft.", "a"]
    response = client.post("/v1/embeddings", json={"model": BACKPACK, "input": texts})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == f"{BACKPACK}:1"
    batch = np.array([row["embedding"] for row in response.json()["data"]])
    assert batch.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    for text, row in zip(texts, batch, strict=True):
        single = client.post("/v1/embeddings", json={"model": BACKPACK, "input": text}).json()
        np.testing.assert_allclose(single["data"][0]["embedding"], row, atol=1e-5)


def test_senses_of_a_dual_encoder_is_a_400(client: TestClient) -> None:
    response = client.post("/v1/senses", json={"model": "tiny", "input": TEXT})
    message = assert_error(response, 400, "invalid_request_error", "model")
    assert "no senses" in message and "tiny:1" in message


def test_unknown_model_is_a_404(client: TestClient) -> None:
    response = client.post("/v1/senses", json={"model": "nope", "input": TEXT})
    assert_error(response, 404, "not_found_error", "model")


@pytest.mark.parametrize(
    ("body", "status", "error_type", "param"),
    [
        ({"input": "a " * (MAX_LEN + 10)}, 400, "invalid_request_error", "input"),
        ({"input": "   "}, 400, "invalid_request_error", "input"),
        ({"next_word": " "}, 400, "invalid_request_error", "next_word"),
        ({"top_words": 6}, 422, "validation_error", "top_words"),  # the table stores 5
        ({"top_words": 0}, 422, "validation_error", "top_words"),
        ({"top_contributions": 0}, 422, "validation_error", "top_contributions"),
        ({"input": "x" * 2001}, 413, "payload_too_large", "input"),
    ],
)
def test_bad_requests(client: TestClient, body: dict[str, Any], status: int, error_type: str, param: str) -> None:
    response = client.post("/v1/senses", json={"model": BACKPACK, "input": TEXT} | body)
    assert_error(response, status, error_type, param)


def test_an_input_of_exactly_the_limit_is_served(client: TestClient) -> None:
    # <s> + 63 tokens: nothing is cut, so it is not refused.
    tokens = senses(client, input=" a" * (MAX_LEN - 1))["tokens"]
    assert len(tokens) == MAX_LEN


def test_senses_need_a_read_key_when_keys_are_set(settings: Settings) -> None:
    keyed = settings.model_copy(update={"api_keys": [KEY], "models": [BACKPACK]})
    with TestClient(create_app(keyed), raise_server_exceptions=False) as client:
        assert_error(client.post("/v1/senses", json={"input": TEXT}), 401, "authentication_error")
        wrong = client.post("/v1/senses", json={"input": TEXT}, headers={"Authorization": "Bearer other"})
        assert_error(wrong, 401, "authentication_error")
        ok = client.post("/v1/senses", json={"input": TEXT}, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200, ok.text


def test_a_dual_encoder_only_store_answers_senses_with_a_400(tiny_store: Path) -> None:
    with TestClient(create_app(Settings(store=tiny_store, threads=1)), raise_server_exceptions=False) as client:
        response = client.post("/v1/senses", json={"input": TEXT})
        assert "no senses" in assert_error(response, 400, "invalid_request_error", "model")
        assert client.post("/v1/embeddings", json={"input": TEXT}).status_code == 200


def test_a_corrupt_senses_file_keeps_the_version_out(mixed_store: Path, settings: Settings, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(mixed_store, store)
    npz = store / BACKPACK / "1" / "senses.npz"
    data = bytearray(npz.read_bytes())
    data[-100] ^= 0xFF
    npz.write_bytes(bytes(data))
    registry = ModelRegistry.from_settings(settings.model_copy(update={"store": store}))
    assert list(registry.models) == ["tiny"]
    assert "senses.npz" in registry.errors[BACKPACK]


def test_int8_setting_serves_the_backpack_in_fp32(mixed_store: Path) -> None:
    # The tiny BERT has an int8 variant, the Backpack only fp32: one setting, both served, each card says which.
    settings = Settings(store=mixed_store, threads=1, poll_interval_s=0, variant="int8")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        body = client.get("/v1/models").json()
        cards = {card["name"]: card for card in body["data"]}
        assert body["errors"] == {}
        assert (cards["tiny"]["variant"], cards[BACKPACK]["variant"]) == ("int8", "fp32")
        assert client.post("/v1/senses", json={"model": BACKPACK, "input": TEXT}).status_code == 200
