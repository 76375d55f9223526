"""The runtime names graph inputs and outputs as the artifact contract does, and raises its own errors."""

from __future__ import annotations

import numpy as np

from xalign.modelstore.artifacts import BACKPACK_OUTPUTS, INPUT_NAMES, SENTENCE_EMBEDDING
from xalign.runtime.errors import EngineError, SenseGraphError, UnknownVariantError
from xalign.runtime.senses.engine import OUTPUTS
from xalign.runtime.session import feeds
from xalign.runtime.tokenization import Batch

BATCH = Batch(
    input_ids=np.array([[5, 6, 7]], dtype=np.int64),
    attention_mask=np.array([[1, 1, 1]], dtype=np.int64),
    token_counts=[3],
)


def test_senses_engine_runs_the_backpack_outputs_beside_the_embedding() -> None:
    assert OUTPUTS == ("contextual", "senses", "alpha")
    assert (SENTENCE_EMBEDDING, *OUTPUTS) == BACKPACK_OUTPUTS


def test_feeds_use_the_contract_names() -> None:
    fed = feeds(BATCH, INPUT_NAMES)
    assert tuple(fed) == INPUT_NAMES
    assert fed["input_ids"] is BATCH.input_ids and fed["attention_mask"] is BATCH.attention_mask


def test_feeds_leave_out_what_the_graph_does_not_declare() -> None:
    assert tuple(feeds(BATCH, {"input_ids", "token_type_ids"})) == ("input_ids",)


def test_runtime_errors_keep_their_builtin_kinds() -> None:
    # The service counts LookupError and ValueError among the failures a version may have at load time.
    assert issubclass(UnknownVariantError, EngineError) and issubclass(UnknownVariantError, LookupError)
    assert issubclass(SenseGraphError, EngineError) and issubclass(SenseGraphError, ValueError)
