"""``POST /v1/bitext/mine`` equals a plain numpy reference of LASER's margin mining, written here from the
paper's formula over the full similarity matrix, on the service's own embeddings: inline sentences, an
index side, and the Tatoeba sentences; plus the errors."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from error_body import assert_error
from fastapi.testclient import TestClient
from tiny_models import publish_tiny

from xalign.service.app import create_app
from xalign.service.settings import Settings

DATA = Path(__file__).resolve().parents[1] / "data" / "tatoeba_mini"
SRC = ["the cat sleeps", "i like green tea", "where is the station", "music is loud", "we eat bread", "rain again"]
TGT = ["die katze schlaeft", "rain again today", "ich mag gruenen tee", "wo ist der bahnhof", "bread we eat", "laut"]
MARGINS = ["ratio", "distance", "absolute"]
RETRIEVALS = ["forward", "backward", "intersect", "max"]


@pytest.fixture(scope="module")
def settings(tiny_store: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # A second model, "other", gives a second embedding space.
    store = tmp_path_factory.mktemp("store-two")
    shutil.copytree(tiny_store, store, dirs_exist_ok=True)
    publish_tiny(tiny_model_dir, store, name="other")
    data = tmp_path_factory.mktemp("bitext-data")
    return Settings(store=store, models=["tiny", "other"], data_dir=data, threads=1, max_inputs_per_request=64)


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def reference(  # type: ignore[no-untyped-def]
    x: np.ndarray, y: np.ndarray, margin: str, k: int, retrieval: str, *, threshold: float | None = None
):
    """LASER (Artetxe & Schwenk 2019) over the full similarity matrix: [(src, tgt, score, cosine)] by score."""
    sim = x @ y.T  # (n, m) cosines
    kx, ky = min(k, y.shape[0]), min(k, x.shape[0])
    x_mean = np.sort(sim, axis=1)[:, ::-1][:, :kx].mean(axis=1)  # (n,) mean cosine of x_i's k nearest y
    y_mean = np.sort(sim, axis=0)[::-1, :][:ky, :].mean(axis=0)  # (m,) mean cosine of y_j's k nearest x
    b = (x_mean[:, None] + y_mean[None, :]) / 2
    score = {"ratio": sim / b, "distance": sim - b, "absolute": sim}[margin]  # (n, m)
    # Candidates of x_i are its k nearest y by cosine; the best of them by margin is kept (and likewise for y_j).
    fwd = []
    for i in range(x.shape[0]):
        near = np.argsort(-sim[i], kind="stable")[:kx]
        j = near[np.argmax(score[i, near])]
        fwd.append((i, int(j)))
    bwd = []
    for j in range(y.shape[0]):
        near = np.argsort(-sim[:, j], kind="stable")[:ky]
        i = near[np.argmax(score[near, j])]
        bwd.append((int(i), j))
    if retrieval == "forward":
        pairs = fwd
    elif retrieval == "backward":
        pairs = bwd
    elif retrieval == "intersect":
        pairs = [p for p in fwd if p in bwd]
    else:
        pairs, used_x, used_y = [], set(), set()
        for i, j in sorted(fwd + bwd, key=lambda p: -score[p]):
            if i not in used_x and j not in used_y:
                pairs.append((i, j))
                used_x.add(i)
                used_y.add(j)
    rows = [(i, j, float(score[i, j]), float(sim[i, j])) for i, j in pairs]
    rows = [r for r in rows if threshold is None or r[2] >= threshold]
    return sorted(rows, key=lambda r: (-r[2], r[0], r[1]))


def _embed(client: TestClient, texts: list[str], model: str = "tiny") -> np.ndarray:
    body = client.post("/v1/embeddings", json={"input": texts, "model": model}).json()
    return np.array([d["embedding"] for d in body["data"]], dtype=np.float64)


def _check(
    pairs: list[dict[str, object]], expected: list[tuple[int, int, float, float]], src: list[str], tgt: list[str]
) -> None:
    assert [(p["src_id"], p["tgt_id"]) for p in pairs] == [(i, j) for i, j, _, _ in expected]
    for p, (i, j, score, cosine) in zip(pairs, expected, strict=True):
        assert p["score"] == pytest.approx(score, abs=1e-4) and p["cosine"] == pytest.approx(cosine, abs=1e-4)
        assert (p["src_text"], p["tgt_text"]) == (src[i], tgt[j])


@pytest.mark.parametrize(("margin", "retrieval"), list(itertools.product(MARGINS, RETRIEVALS)))
def test_inline_sentences_equal_the_reference(client: TestClient, margin: str, retrieval: str) -> None:
    body = {"src": {"texts": SRC}, "tgt": {"texts": TGT}, "margin": margin, "retrieval": retrieval, "k": 3}
    response = client.post("/v1/bitext/mine", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "tiny:1" and response.json()["usage"]["total_tokens"] > 0
    expected = reference(_embed(client, SRC), _embed(client, TGT), margin, 3, retrieval)
    _check(response.json()["pairs"], expected, SRC, TGT)


@pytest.fixture(scope="module")
def tgt_index(client: TestClient) -> str:
    assert client.post("/v1/indexes", json={"name": "tgt", "kind": "hnsw"}).status_code == 201
    assert client.post("/v1/indexes/tgt/texts", json={"texts": TGT}).status_code == 200
    return "tgt"


@pytest.mark.parametrize(("margin", "retrieval"), list(itertools.product(MARGINS, RETRIEVALS)))
def test_an_index_side_equals_the_reference(client: TestClient, tgt_index: str, margin: str, retrieval: str) -> None:
    body = {"src": {"texts": SRC}, "tgt": {"index": tgt_index}, "margin": margin, "retrieval": retrieval}
    response = client.post("/v1/bitext/mine", json=body)
    assert response.status_code == 200, response.text
    expected = reference(_embed(client, SRC), _embed(client, TGT), margin, 4, retrieval)
    _check(response.json()["pairs"], expected, SRC, TGT)
    # Index against itself: every text is its own best pair.
    same = client.post("/v1/bitext/mine", json={**body, "src": {"index": tgt_index}}).json()
    assert sorted((p["src_id"], p["tgt_id"]) for p in same["pairs"]) == [(i, i) for i in range(len(TGT))]


def _threshold_between_scores(scores: list[float]) -> float:
    """A threshold that keeps about half of the pairs and sits halfway across the widest gap between the middle
    scores. The service scores in float32 and the reference in float64: a threshold on (or within 1e-6 of) a
    pair's score would keep or drop that pair by rounding, which differs between CPUs."""
    ranked = sorted(scores)
    middle = ranked[len(ranked) // 4 : 3 * len(ranked) // 4 + 1]
    width, threshold = max((b - a, (a + b) / 2) for a, b in itertools.pairwise(middle))
    assert width > 1e-4, "no clear gap between the middle scores"
    return threshold


@pytest.mark.parametrize("margin", MARGINS)
def test_tatoeba_sentences_equal_the_reference(client: TestClient, margin: str) -> None:
    deu = (DATA / "tatoeba.deu-eng.deu").read_text().splitlines()[:40]
    eng = (DATA / "tatoeba.deu-eng.eng").read_text().splitlines()[:40]
    x, y = _embed(client, deu), _embed(client, eng)
    threshold = _threshold_between_scores([r[2] for r in reference(x, y, margin, 4, "max")])
    body = {"src": {"texts": deu}, "tgt": {"texts": eng}, "margin": margin, "threshold": threshold}
    pairs = client.post("/v1/bitext/mine", json=body).json()["pairs"]
    expected = reference(x, y, margin, 4, "max", threshold=threshold)
    assert 5 <= len(expected) < 40
    _check(pairs, expected, deu, eng)


def test_errors(client: TestClient, tgt_index: str) -> None:
    src = {"texts": SRC}
    assert_error(client.post("/v1/bitext/mine", json={"src": src, "tgt": {"index": "ghost"}}), 404, "not_found_error")
    both = {"texts": SRC, "index": tgt_index}
    assert_error(client.post("/v1/bitext/mine", json={"src": src, "tgt": both}), 422, "validation_error")
    assert_error(client.post("/v1/bitext/mine", json={"src": src, "tgt": src, "margin": "x"}), 422, "validation_error")
    assert_error(client.post("/v1/bitext/mine", json={"src": {"texts": []}, "tgt": src}), 400, "invalid_request_error")
    assert_error(
        client.post("/v1/bitext/mine", json={"src": {"texts": ["a"] * 65}, "tgt": src}), 413, "payload_too_large"
    )
    wrong_model = {"src": src, "tgt": {"index": tgt_index}, "model": "other"}
    assert "embedded the index" in assert_error(client.post("/v1/bitext/mine", json=wrong_model), 409, "conflict_error")
    client.post("/v1/indexes", json={"name": "other-space", "model": "other"})
    client.post("/v1/indexes/other-space/texts", json={"texts": SRC})
    two = {"src": {"index": "other-space"}, "tgt": {"index": tgt_index}}
    assert "different embedding spaces" in assert_error(client.post("/v1/bitext/mine", json=two), 409, "conflict_error")
    # Two indexes in the same space need no model at all.
    other = client.post(
        "/v1/bitext/mine", json={"src": {"index": "other-space"}, "tgt": {"texts": TGT}, "model": "other"}
    )
    assert other.status_code == 200 and other.json()["model"] == "other:1" and other.json()["usage"]["total_tokens"] > 0


@pytest.mark.parametrize("side", ["src", "tgt"])
def test_a_bad_index_name_names_its_side(client: TestClient, side: str) -> None:
    other = "tgt" if side == "src" else "src"
    body = {side: {"index": "../escape"}, other: {"texts": ["a"]}}
    message = assert_error(client.post("/v1/bitext/mine", json=body), 422, "validation_error", f"{side}.index")
    assert "rule" in message
