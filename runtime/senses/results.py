"""What the senses maths returns: plain frozen records, no HTTP.

``service/senses/explain.py`` maps them onto the response models of ``service/senses/schema.py``; the
fields here carry the same names, so that mapping is a field-for-field copy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sense:
    """Sense ``sense`` of one token: its vector's norm, its weight at the last position, its top words."""

    sense: int
    norm: float
    # alpha[sense, last, position]: how much the last position draws on this token's sense.
    weight: float
    top_words: list[str]


@dataclass(frozen=True)
class TokenSenses:
    """One input token, its senses, and per sense the weights it gives to itself and earlier positions."""

    position: int
    id: int
    text: str
    senses: list[Sense]
    # k lists, list l = alpha[l, position, :position + 1] (each sums to 1).
    alpha: list[list[float]]


@dataclass(frozen=True)
class Contribution:
    """alpha[sense, last, position] * C(x_position)[sense]·E_word: one term of the next word's logit."""

    position: int
    token: str
    sense: int
    value: float


@dataclass(frozen=True)
class NextWord:
    """The logit of ``word`` (the first token of the requested next word) at the last position, decomposed."""

    word: str
    token_id: int
    logit: float
    contributions: list[Contribution]
