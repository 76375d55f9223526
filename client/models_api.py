"""``/v1/models``: the served models, one model's card, and the admin calls that reload, promote and roll back."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from xalign.client.calls import Call, body, parsed, segment
from xalign.client.endpoints import Endpoint, R, Resource
from xalign.client.wire import WireModel


class ModelCard(WireModel):
    """A served model: ``id`` is ``name:version``; ``default`` marks the one answering requests without ``model``."""

    id: str
    object: str = "model"
    owned_by: str = "xalign"
    name: str
    version: int
    aliases: dict[str, int] = Field(default_factory=dict)
    family: str
    dimension: int
    variant: str
    provider: str
    loaded_at: datetime | None = None
    default: bool = False


class LoadFailure(WireModel):
    """Why the last (re)load of a model failed, and when (UTC)."""

    message: str
    at: datetime | None = None


class ModelList(WireModel):
    """The served models, and per name why its last (re)load failed (the version listed keeps serving)."""

    object: str = "list"
    data: list[ModelCard]
    errors: dict[str, str] = Field(default_factory=dict)
    failures: dict[str, LoadFailure] = Field(default_factory=dict)


class ModelDetail(ModelCard):
    """One model's card with its evaluation (variant → metric → value), stored versions, languages, prefixes."""

    evaluation: dict[str, dict[str, float]] = Field(default_factory=dict)
    versions: list[int] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    text_prefixes: dict[str, str] = Field(default_factory=dict)


class ReloadResult(WireModel):
    """The served version before and after a reload; ``changed`` is false when it was already current."""

    name: str
    previous: int | None
    version: int | None
    changed: bool


class AliasMove(WireModel):
    """An alias moved by promote or rollback: from ``previous`` to ``version``; ``served`` is the version now served."""

    name: str
    alias: str
    previous: int | None
    version: int
    served: int | None


class Models(Resource[R]):
    """``client.models``: list, get, and the admin calls reload, promote and rollback."""

    @Endpoint
    @staticmethod
    def list() -> Call[ModelList]:
        """The served models (``GET /v1/models``).

        >>> [card.id for card in client.models.list().data]
        ['tiny:1']
        """
        return Call("GET", "/v1/models", parsed(ModelList))

    @Endpoint
    @staticmethod
    def get(model_id: str) -> Call[ModelDetail]:
        """One model's card (``GET /v1/models/{model_id}``): ``name``, ``name:VERSION`` or ``name@ALIAS``.

        >>> client.models.get("tiny").evaluation
        {'fp32': {'tatoeba.deu-eng': 0.91}}
        """
        return Call("GET", f"/v1/models/{segment(model_id)}", parsed(ModelDetail))

    @Endpoint
    @staticmethod
    def reload(name: str) -> Call[ReloadResult]:
        """Load the version ``name`` resolves to now and swap it in (admin); the old one serves on a failure.

        >>> client.models.reload("tiny").changed
        False
        """
        # Loading what the store says now: sending it twice does no more than once.
        return Call("POST", f"/v1/models/{segment(name)}/reload", parsed(ReloadResult))

    @Endpoint
    @staticmethod
    def promote(name: str, version: int, *, alias: str | None = None) -> Call[AliasMove]:
        """Point ``alias`` (default: the store's default alias) of ``name`` at ``version``; the service reloads (admin).

        >>> client.models.promote("tiny", 2).served
        2
        """
        path = f"/v1/models/{segment(name)}/promote"
        return Call("POST", path, parsed(AliasMove), json=body(version=version, alias=alias), idempotent=False)

    @Endpoint
    @staticmethod
    def rollback(name: str, *, alias: str | None = None) -> Call[AliasMove]:
        """Move ``alias`` of ``name`` back to the version it pointed at before; the service reloads (admin)."""
        path = f"/v1/models/{segment(name)}/rollback"
        return Call("POST", path, parsed(AliasMove), json=body(alias=alias), idempotent=False)
