"""Sentences from a small English word list: every word is in the tiny models' vocabularies."""

from __future__ import annotations

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "while",
    "dogs",
    "ran",
    "far",
    "away",
    "from",
    "home",
    "and",
    "birds",
    "sang",
    "songs",
    "all",
    "day",
    "long",
]
