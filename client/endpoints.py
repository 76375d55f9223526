"""Methods written once for both clients: an :class:`Endpoint` wraps a call builder and, read from a sync resource,
is a method returning the parsed result; read from an async one, a method returning an awaitable of it.

In ``client/models_api.py``, ``Models.list`` is a builder ``() -> Call[ModelList]`` decorated with ``@Endpoint``
(over ``@staticmethod``): ``client.models.list() -> ModelList``, ``await async_client.models.list()``, with the
builder's signature and docstring, written in one place.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

from xalign.client.async_runner import AsyncRunner
from xalign.client.calls import Call
from xalign.client.sync_runner import SyncRunner

P = ParamSpec("P")
T = TypeVar("T")
# The runner a resource sends its calls through: its type decides what the resource's endpoints return.
R = TypeVar("R", bound=SyncRunner | AsyncRunner)


class Resource(Generic[R]):
    """A group of endpoints (``client.models``, ``client.indexes``, ...) bound to one runner."""

    def __init__(self, runner: R) -> None:
        self._runner: R = runner


class Endpoint(Generic[P, T]):
    """A method of a :class:`Resource` made from a call builder ``spec(*args) -> Call[T]``."""

    def __init__(self, spec: Callable[P, Call[T]]) -> None:
        self.spec = spec

    @overload
    def __get__(self, resource: None, owner: Any) -> Endpoint[P, T]: ...

    @overload
    def __get__(self, resource: Resource[SyncRunner], owner: Any) -> Callable[P, T]: ...

    @overload
    def __get__(self, resource: Resource[AsyncRunner], owner: Any) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, resource: Resource[Any] | None, owner: Any) -> Endpoint[P, T] | Callable[P, Any]:
        if resource is None:
            return self  # read from the class (help(), documentation tools)
        run = resource._runner.run
        spec = self.spec

        @functools.wraps(spec)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return run(spec(*args, **kwargs))

        return method
