"""Token usage in OpenAI's shape, reported by every route that embeds texts (embeddings, indexes, mining)."""

from __future__ import annotations

from pydantic import BaseModel


class Usage(BaseModel):
    """Tokens the request's texts took."""

    prompt_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, tokens: int) -> Usage:
        """The usage of ``tokens`` input tokens: embedding generates none, so the total is the same."""
        return cls(prompt_tokens=tokens, total_tokens=tokens)


class ModelUsage(BaseModel):
    """What every response that embedded texts ends with: the model version that did it, and its usage."""

    model: str
    usage: Usage
