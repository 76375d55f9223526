"""The one place where request limits live: a cap on every field, and the check of texts against the settings.

Fixed caps (names, model references, ``next_word``, ``k``, ``user``...) are part of the request field types
below, so pydantic refuses a field past its cap while parsing the body (422 naming it), before any tokenising
or other heavy work. The configured limits (texts per request, characters per text: settings, because a
deployment may raise them) are checked by :func:`check_texts`, the one check every route's texts go through.

Every string field is also valid Unicode: JSON allows lone surrogates (``"\\ud800"``), which no tokenizer
can encode; they are refused while parsing with the error type ``INVALID_UNICODE`` (400 naming the field).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from fastapi import Path
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from xalign.modelstore.names import MAX_NAME_LENGTH
from xalign.service.errors import (
    INPUT_TOO_LONG,
    INVALID_UNICODE,
    TOO_MANY_INPUTS,
    InvalidRequestError,
    PayloadTooLargeError,
)
from xalign.service.settings import Settings

# Model and index names: the store's own rule (a name becomes a folder).
MAX_NAME_CHARS = MAX_NAME_LENGTH
# A model reference: NAME, NAME:VERSION or NAME@ALIAS (an alias is a name too).
MAX_REF_CHARS = 2 * MAX_NAME_CHARS + 1
# /v1/senses next_word: one word, of which only the first token counts.
MAX_WORD_CHARS = 100
# OpenAI's end-user id: accepted for compatibility, never used.
MAX_USER_CHARS = 256
# Neighbours per query (search) and neighbourhood size (mining).
MAX_K = 1000
# Matryoshka output size; a model's manifest narrows it further (422).
MAX_DIMENSIONS = 1 << 16
# /v1/senses top_words and top_contributions; the model's table narrows top_words further (422).
MAX_TOP = 1000
# /v1/rerank top_n: past any request's documents (a setting), so it only cuts what a request sends.
MAX_TOP_N = 1 << 20
# Index parameters: a handful of named integers (nlist, nprobe, train_size, m, ef_construction, ef_search).
MAX_INDEX_PARAMS = 8
MAX_PARAM_NAME_CHARS = 32


def valid_unicode(text: str) -> str:
    """``text`` if it encodes as UTF-8; a lone surrogate raises the ``INVALID_UNICODE`` validation error."""
    if text.isascii():  # the common case, one pass in C with no copy
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PydanticCustomError(
            INVALID_UNICODE,
            "not valid Unicode: a lone surrogate at character {position} (\\ud800-\\udfff escapes must pair up)",
            {"position": exc.start},
        ) from None
    return text


_Unicode = AfterValidator(valid_unicode)

# A text to embed, tokenise or store; its length is a setting, checked by check_texts.
Text = Annotated[str, _Unicode]
# A model or index name as a field (the store's rules are checked where the name is used: 422 naming the rule).
Name = Annotated[str, Field(max_length=MAX_NAME_CHARS), _Unicode]
# A model reference: NAME, NAME:VERSION or NAME@ALIAS.
ModelRef = Annotated[str, Field(max_length=MAX_REF_CHARS, description="NAME, NAME:VERSION or NAME@ALIAS"), _Unicode]
Word = Annotated[str, Field(max_length=MAX_WORD_CHARS), _Unicode]
User = Annotated[
    str, Field(max_length=MAX_USER_CHARS, description="accepted for OpenAI compatibility; unused"), _Unicode
]
ParamName = Annotated[str, Field(max_length=MAX_PARAM_NAME_CHARS), _Unicode]
# A model or index name in a route's path.
NameInPath = Annotated[str, Path(max_length=MAX_NAME_CHARS), _Unicode]
# An index's FAISS parameters, by name.
IndexParams = Annotated[dict[ParamName, int], Field(max_length=MAX_INDEX_PARAMS)]
K = Annotated[int, Field(ge=1, le=MAX_K)]
Dimensions = Annotated[int, Field(ge=1, le=MAX_DIMENSIONS)]
Top = Annotated[int, Field(ge=1, le=MAX_TOP)]
TopN = Annotated[int, Field(ge=1, le=MAX_TOP_N)]
# Which prefix a text gets, where the model's manifest defines one per type (``text_prefixes``).
InputType = Literal["query", "passage"]


def check_text(text: str, settings: Settings, param: str, shown: str | None = None) -> str:
    """``text`` if within the characters-per-text limit and not blank; else 413 or 400 naming ``param``."""
    shown = shown or param
    # Length first: a cheap O(1) refusal before any pass over a huge text.
    if len(text) > settings.max_chars_per_input:
        message = f"{shown} is longer than {settings.max_chars_per_input} characters"
        raise PayloadTooLargeError(message, param, code=INPUT_TOO_LONG)
    if not text.strip():
        raise InvalidRequestError(f"{shown} is empty", param, code="empty_input")
    return text


def check_texts(texts: Sequence[str], settings: Settings, param: str) -> list[str]:
    """``texts`` if within the request limits and none is blank; else 400 or 413 naming ``param``."""
    if not texts:
        raise InvalidRequestError(f"{param} must not be empty", param, code="empty_input")
    if len(texts) > settings.max_inputs_per_request:
        message = f"at most {settings.max_inputs_per_request} texts per request"
        raise PayloadTooLargeError(message, param, code=TOO_MANY_INPUTS)
    return [check_text(text, settings, param, f"{param}[{i}]") for i, text in enumerate(texts)]


def check_pairs(pairs: Sequence[tuple[str, str]], settings: Settings, param: str) -> list[str]:
    """The texts of ``pairs`` in order (2 per pair), within the request limits: a pair counts as 2 texts."""
    if not pairs:
        raise InvalidRequestError(f"{param} must not be empty", param, code="empty_input")
    if 2 * len(pairs) > settings.max_inputs_per_request:
        message = f"at most {settings.max_inputs_per_request // 2} pairs per request (2 texts each)"
        raise PayloadTooLargeError(message, param, code=TOO_MANY_INPUTS)
    return [
        check_text(text, settings, param, f"{param}[{i}][{j}]")
        for i, pair in enumerate(pairs)
        for j, text in enumerate(pair)
    ]
