"""The base of every response type: fields the client does not know are ignored, so a newer service still parses."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """A response body (or part of one) as the client reads it: immutable, unknown fields ignored."""

    # Unlike the service's request bodies (extra="forbid"): a response may gain fields in a later version.
    model_config = ConfigDict(extra="ignore", frozen=True, protected_namespaces=())


class Usage(WireModel):
    """Tokens the request's texts took (OpenAI's usage block)."""

    prompt_tokens: int
    total_tokens: int
