"""What both clients are made of: the calls on texts, mining and senses at the top level, models and indexes as
groups, all bound to one runner (``client/sync_runner.py`` or ``client/async_runner.py``)."""

from __future__ import annotations

from xalign.client.bitext_api import MiningCalls
from xalign.client.endpoints import R
from xalign.client.indexes_api import Indexes
from xalign.client.models_api import Models
from xalign.client.senses_api import SensesCalls
from xalign.client.texts_api import TextCalls


class ClientCalls(TextCalls[R], MiningCalls[R], SensesCalls[R]):
    """The calls of both clients."""

    def __init__(self, runner: R) -> None:
        super().__init__(runner)
        self.models = Models(runner)
        self.indexes = Indexes(runner)

    @property
    def base_url(self) -> str:
        """The service's root URL."""
        return self._runner.options.base_url
