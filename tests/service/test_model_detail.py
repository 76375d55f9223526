"""``GET /v1/models/{model_id}`` and the ``default`` flag of ``GET /v1/models``, over a store copy with two
versions of ``tiny`` and a second model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from error_body import assert_error
from fastapi.testclient import TestClient
from store_copies import add_version, copy_model, copy_store, set_evaluation

from xalign.modelstore import ModelStore
from xalign.modelstore.refs import parse_ref
from xalign.service.app import create_app
from xalign.service.settings import Settings

PREFIXES = {"query": "query: ", "passage": "passage: "}
EVALUATION = {"tatoeba": {"deu-eng": 91.5, "eng-deu": 90.5, "mean": 91.0}, "bucc2018-de-en": {"f1": 88.25}}


@pytest.fixture(scope="module")
def store(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny 1 and 2 (production: 1, version 2 with an evaluation), and ``other``: a copy of tiny."""
    store = copy_store(tiny_store, tmp_path_factory.mktemp("detail"))
    set_evaluation(store, 1, EVALUATION, text_prefixes=PREFIXES)
    add_version(store, 2, {})
    ModelStore(store).promote("tiny", 1, actor="test set-up")
    copy_model(store, "tiny", "other")
    return store


def _client(store: Path, **extra: object) -> TestClient:
    settings = Settings(store=store, threads=1, poll_interval_s=0, data_dir=store.parent / "data", **extra)  # type: ignore[arg-type]
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(store: Path) -> Iterator[TestClient]:
    with _client(store) as client:
        yield client


def test_the_card_with_evaluation_versions_languages_and_prefixes(client: TestClient, store: Path) -> None:
    response = client.get("/v1/models/tiny")
    assert response.status_code == 200, response.text
    detail = response.json()
    manifest = ModelStore(store).manifest(parse_ref("tiny:1"))
    listed = next(card for card in client.get("/v1/models").json()["data"] if card["id"] == "tiny:1")
    # The list's card, plus what only the detail has.
    assert {key: detail[key] for key in listed} == listed
    assert set(detail) - set(listed) == {"evaluation", "versions", "languages", "text_prefixes"}
    assert detail["evaluation"] == EVALUATION
    assert detail["versions"] == [1, 2]
    assert detail["languages"] == manifest.languages == ["en", "de"]
    assert detail["text_prefixes"] == manifest.text_prefixes == PREFIXES
    assert (detail["id"], detail["version"], detail["aliases"]) == ("tiny:1", 1, {"production": 1})


def test_a_reference_as_in_requests(client: TestClient) -> None:
    for ref in ("tiny", "tiny:1", "tiny@production"):
        response = client.get(f"/v1/models/{ref}")
        assert response.status_code == 200, (ref, response.text)
        assert response.json()["id"] == "tiny:1"
    assert client.get("/v1/models/tiny@latest").status_code == 404  # latest is 2, which is not served


def test_unknown_models_and_versions_are_404_and_bad_names_422(client: TestClient) -> None:
    assert_error(client.get("/v1/models/ghost"), 404, "not_found_error", "model_id", code="model_not_found")
    for ref in ("tiny:2", "tiny:7", "tiny@staging"):
        assert_error(
            client.get(f"/v1/models/{ref}"), 404, "not_found_error", "model_id", code="model_version_not_found"
        )
    for ref in ("a..b", "tiny:0", "tiny@9x", "-dash"):
        assert_error(client.get(f"/v1/models/{ref}"), 422, "validation_error", "model_id", code="invalid_name")


def test_exactly_one_model_is_the_default(client: TestClient, store: Path) -> None:
    cards = client.get("/v1/models").json()["data"]
    # No default_model: the first served dual encoder in the store's order (alphabetical): other.
    assert {card["id"]: card["default"] for card in cards} == {"other:1": True, "tiny:1": False}
    with _client(store, default_model="tiny") as pinned:
        cards = pinned.get("/v1/models").json()["data"]
        assert {card["id"]: card["default"] for card in cards} == {"other:1": False, "tiny:1": True}
        assert pinned.get("/v1/models/tiny").json()["default"] is True
        assert pinned.get("/v1/models/other").json()["default"] is False
