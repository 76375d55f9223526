"""``LiveEncoder``: batches cut from length-sorted texts give each text the vector it gets alone, in input order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from transformers import AutoModel, AutoTokenizer

from xalign.training.trainer.batches import TextTokenizer
from xalign.training.trainer.dev_eval import LiveEncoder

TEXTS = [
    "a much longer sentence about the weather in the mountains this week",
    "short",
    "a dog",
    "the cat sat on the mat and looked out of the window at the rain",
    "hello world",
]


def test_sorted_batches_equal_one_text_at_a_time_in_input_order(still_model: Path) -> None:
    tokenizer = TextTokenizer(AutoTokenizer.from_pretrained(str(still_model)), "", 32)
    encoder = LiveEncoder(AutoModel.from_pretrained(str(still_model)), tokenizer, "mean", batch_size=2)
    batched = encoder.encode(TEXTS)  # (5, dim): three batches of the length-sorted texts
    alone = np.concatenate([encoder.encode([text]) for text in TEXTS])
    assert batched.shape == alone.shape == (5, 32)
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert not np.allclose(batched[0], batched[1], atol=1e-3)  # the texts do get different vectors
