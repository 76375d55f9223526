"""``explain``: one senses request answered: tokenise (refusing what would be truncated), run, decompose, and
copy the runtime's records (``runtime/senses/results.py``) into the response models."""

from __future__ import annotations

from xalign.runtime.senses.decomposition import next_word, token_senses
from xalign.runtime.senses.engine import SenseEngine
from xalign.service.errors import InvalidRequestError, UnprocessableError
from xalign.service.senses.schema import NextWord, SensesRequest, SensesResponse, SensesUsage, TokenSenses


def input_ids(engine: SenseEngine, text: str) -> list[int]:
    """The text's token ids; an input over the model's token limit is refused (400), never silently cut."""
    if not text.strip():
        raise InvalidRequestError("input is empty", "input")
    ids, truncated = engine.tokenizer.encode_one(text)
    if truncated:
        limit = engine.tokenizer.max_length
        raise InvalidRequestError(
            f"input is longer than the model's {limit} tokens: shorten it", "input", code="input_too_long"
        )
    return ids


def next_word_id(engine: SenseEngine, word: str) -> int:
    """The id of the first token of ``word`` as a continuation (byte-level BPE adds the leading space)."""
    ids = engine.tokenizer.encode_fragment(word) if word.strip() else []
    if not ids:
        raise InvalidRequestError("next_word is empty", "next_word")
    return ids[0]


def explain(engine: SenseEngine, request: SensesRequest, model_id: str) -> SensesResponse:
    """The full response for ``request`` (blocking: one forward pass; run it off the event loop)."""
    if request.top_words > engine.table.n_top:
        raise UnprocessableError(f"{model_id} stores {engine.table.n_top} top words per sense", "top_words")
    ids = input_ids(engine, request.input)
    target = None if request.next_word is None else next_word_id(engine, request.next_word)
    arrays = engine.run(ids)
    found = token_senses(arrays, engine.table, engine.words, request.top_words)
    # from_attributes: the records' fields carry the response models' names, nested records included.
    tokens = [TokenSenses.model_validate(token, from_attributes=True) for token in found]
    scored = None
    if target is not None:
        decomposed = next_word(arrays, engine.table, engine.words, target, request.top_contributions)
        scored = NextWord.model_validate(decomposed, from_attributes=True)
    usage = SensesUsage(prompt_tokens=len(ids), total_tokens=len(ids))
    return SensesResponse(model=model_id, tokens=tokens, next_word=scored, usage=usage)
