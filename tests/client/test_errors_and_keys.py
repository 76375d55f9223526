"""The client's exception tree against a live server: status, type, code, param and request id of each error;
keys sent as ``Authorization: Bearer``, read from ``XALIGN_API_KEY`` only when no key is given."""

from __future__ import annotations

import re

import pytest
from client_flavours import AnyClient, run_with, settle
from client_server import ADMIN_KEY, READ_KEY, Live

from xalign.client import (
    APIConnectionError,
    AuthenticationError,
    Client,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    UnprocessableEntityError,
    XAlignError,
)
from xalign.client.options import API_KEY_ENV


def test_unknown_model_is_not_found_with_its_request_id(live: Live, flavour: str) -> None:
    async def scenario(client: AnyClient) -> None:
        with pytest.raises(NotFoundError) as caught:
            await settle(client.embed(["hello"], model="no-such-model"))
        error = caught.value
        assert isinstance(error, XAlignError)
        assert (error.status, error.type, error.param) == (404, "not_found_error", "model")
        assert "no-such-model" in error.message
        assert error.request_id is not None and re.fullmatch("[0-9a-f]{32}", error.request_id)
        assert error.request_id in str(error)

    run_with(flavour, scenario, live.base_url, api_key=READ_KEY)


def test_unknown_model_code(live: Live, flavour: str) -> None:
    async def scenario(client: AnyClient) -> None:
        with pytest.raises(NotFoundError) as caught:
            await settle(client.embed(["hello"], model="no-such-model"))
        assert caught.value.code == "model_not_found"

    run_with(flavour, scenario, live.base_url, api_key=READ_KEY)


def test_limits_and_validation_map_to_their_classes(live: Live, flavour: str) -> None:
    async def scenario(client: AnyClient) -> None:
        with pytest.raises(PayloadTooLargeError) as too_many:
            await settle(client.embed([f"text {i}" for i in range(9)]))  # the server takes 8
        assert (too_many.value.status, too_many.value.param) == (413, "input")
        with pytest.raises(UnprocessableEntityError) as invalid:
            await settle(client.mine(["a"], ["b"], k=0))
        assert (invalid.value.status, invalid.value.type, invalid.value.param) == (422, "validation_error", "k")
        with pytest.raises(TypeError, match="list of texts"):
            await settle(client.mine("one string", ["b"]))  # type: ignore[arg-type]

    run_with(flavour, scenario, live.base_url, api_key=READ_KEY)


def test_keys(live: Live, flavour: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)

    async def without_key(client: AnyClient) -> None:
        with pytest.raises(AuthenticationError) as caught:
            await settle(client.models.list())
        assert (caught.value.status, caught.value.type) == (401, "authentication_error")

    async def read_key(client: AnyClient) -> None:
        assert [m.id for m in (await settle(client.models.list())).data] == ["tiny:1"]
        with pytest.raises(PermissionDeniedError) as caught:
            await settle(client.indexes.create("never-made"))  # an admin route
        assert caught.value.status == 403

    run_with(flavour, without_key, live.base_url)
    run_with(flavour, without_key, live.base_url, api_key="sk-wrong")
    run_with(flavour, read_key, live.base_url, api_key=READ_KEY)
    monkeypatch.setenv(API_KEY_ENV, READ_KEY)
    run_with(flavour, read_key, live.base_url)  # read from the environment when api_key is None
    run_with(flavour, without_key, live.base_url, api_key="sk-wrong")  # an explicit key wins over it


def test_the_key_is_read_when_the_client_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, "sk-first")
    client = Client("http://127.0.0.1:1/v1/")
    monkeypatch.setenv(API_KEY_ENV, ADMIN_KEY)
    assert client._runner.http.headers["authorization"] == "Bearer sk-first"
    assert client.base_url == "http://127.0.0.1:1"  # the OpenAI client's form (…/v1) is accepted
    client.close()


def test_connection_errors_are_wrapped(flavour: str) -> None:
    async def scenario(client: AnyClient) -> None:
        with pytest.raises(APIConnectionError) as caught:
            await settle(client.models.list())
        assert caught.value.status is None
        assert caught.value.request_id is not None

    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    run_with(flavour, scenario, "http://127.0.0.1:1", max_retries=0)
