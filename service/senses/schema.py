"""The request and response bodies of ``POST /v1/senses`` (docs/backpack interface)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from xalign.service.limits import ModelRef, Text, Top, Word


class SensesRequest(BaseModel):
    """One text to decompose; ``next_word`` asks which (position, sense) pairs push that word's logit."""

    model_config = ConfigDict(extra="forbid")
    model: ModelRef | None = None
    # Its length is checked against the settings (413), its tokens against the model (400).
    input: Text
    # Capped (MAX_WORD_CHARS): a huge next word once took seconds of tokenising.
    next_word: Word | None = None
    # At most the table's n_top (checked against the model: 422 above it).
    top_words: Top = 5
    top_contributions: Top = 10


class Sense(BaseModel):
    """Sense ``sense`` of one token: its vector's norm, its weight at the last position, its top words."""

    sense: int
    norm: float
    # alpha[sense, last, position]: how much the last position draws on this token's sense.
    weight: float
    top_words: list[str]


class TokenSenses(BaseModel):
    """One input token, its senses, and per sense the weights it gives to itself and earlier positions."""

    position: int
    id: int
    text: str
    senses: list[Sense]
    # k lists, list l = alpha[l, position, :position + 1] (each sums to 1).
    alpha: list[list[float]]


class Contribution(BaseModel):
    """alpha[sense, last, position] * C(x_position)[sense]·E_word: one term of the next word's logit."""

    position: int
    token: str
    sense: int
    value: float


class NextWord(BaseModel):
    """The logit of ``word`` (the first token of the requested next word) at the last position, decomposed."""

    word: str
    token_id: int
    logit: float
    contributions: list[Contribution]


class SensesUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class SensesResponse(BaseModel):
    object: Literal["senses"] = "senses"
    model: str
    tokens: list[TokenSenses]
    next_word: NextWord | None
    usage: SensesUsage
