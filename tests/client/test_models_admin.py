"""The admin calls on models (promote, rollback, reload) and a model's card, against a live server over a store
holding tiny 1 (production) and 2; and senses, over a store holding a tiny Backpack."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from client_flavours import AnyClient, run_with, settle
from client_server import ADMIN_KEY, READ_KEY, Live, live_server
from store_copies import add_version, copy_store, set_evaluation, tatoeba
from tiny_backpack import build_backpack_dir, publish_tiny_backpack

from xalign.client import AliasMove, ConflictError, ModelDetail, NotFoundError, PermissionDeniedError, SensesResult
from xalign.modelstore import ModelStore

BACKPACK = "tiny-backpack"


@pytest.fixture
def two_versions(tiny_store: Path, tmp_path: Path) -> Iterator[Live]:
    """A server over tiny 1 (production, Tatoeba 80) and 2 (Tatoeba 85, passes the release gate)."""
    store = copy_store(tiny_store, tmp_path)
    set_evaluation(store, 1, tatoeba(80.0))
    add_version(store, 2, tatoeba(85.0))
    ModelStore(store).promote("tiny", 1, actor="test set-up")
    with live_server(store, tmp_path / "data") as served:
        yield served


def test_card_promote_and_rollback(two_versions: Live, flavour: str) -> None:
    async def scenario(client: AnyClient) -> None:
        card = await settle(client.models.get("tiny@production"))
        assert isinstance(card, ModelDetail)
        assert (card.id, card.versions, card.aliases) == ("tiny:1", [1, 2], {"production": 1})
        assert card.evaluation == tatoeba(80.0)
        promoted = await settle(client.models.promote("tiny", 2))
        assert promoted == AliasMove(name="tiny", alias="production", previous=1, version=2, served=2)
        assert (await settle(client.models.get("tiny"))).id == "tiny:2"
        staged = await settle(client.models.promote("tiny", 1, alias="staging"))
        assert (staged.alias, staged.previous, staged.version, staged.served) == ("staging", None, 1, 2)
        rolled = await settle(client.models.rollback("tiny"))
        assert rolled == AliasMove(name="tiny", alias="production", previous=2, version=1, served=1)
        with pytest.raises(ConflictError) as nothing:
            await settle(client.models.rollback("tiny"))
        assert (nothing.value.param, nothing.value.code) == ("alias", "nothing_to_roll_back")
        with pytest.raises(NotFoundError):
            await settle(client.models.promote("tiny", 9))
        reloaded = await settle(client.models.reload("tiny"))
        assert (reloaded.version, reloaded.changed) == (1, False)

    async def read_only(client: AnyClient) -> None:
        with pytest.raises(PermissionDeniedError):
            await settle(client.models.promote("tiny", 2))

    run_with(flavour, scenario, two_versions.base_url, api_key=ADMIN_KEY)
    run_with(flavour, read_only, two_versions.base_url, api_key=READ_KEY)


@pytest.fixture(scope="module")
def with_backpack(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A server over the tiny dual encoder and ``tiny-backpack`` version 1."""
    root = tmp_path_factory.mktemp("client-senses")
    shutil.copytree(tiny_store, root / "store")
    publish_tiny_backpack(build_backpack_dir(root / "backpack", seed=0), root / "store", name=BACKPACK)
    with live_server(root / "store", root / "data", max_chars_per_input=2000) as served:
        yield served


def test_senses(with_backpack: Live, flavour: str) -> None:
    async def scenario(client: AnyClient) -> None:
        result = await settle(client.senses("The cat sat on the", model=BACKPACK, next_word=" mat", top_words=3))
        assert isinstance(result, SensesResult)
        assert result.model == f"{BACKPACK}:1"
        assert [t.position for t in result.tokens] == list(range(len(result.tokens)))
        assert all(len(sense.top_words) == 3 for token in result.tokens for sense in token.senses)
        assert result.next_word is not None and result.next_word.contributions
        assert result.usage.prompt_tokens == len(result.tokens)
        plain = await settle(client.senses("The cat", model=BACKPACK))
        assert plain.next_word is None

    run_with(flavour, scenario, with_backpack.base_url, api_key=READ_KEY)
