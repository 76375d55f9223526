"""Fixtures of the Backpack trainer tests: the test data folder and a tiny tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
from backpack_training_data import DATA, tiny_texts
from tokenizers import Tokenizer

from xalign.training.models.backpack_tokenizer import train_tokenizer


@pytest.fixture(scope="session")
def data_root() -> Path:
    return DATA


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return train_tokenizer(tiny_texts(), vocab_size=400)
