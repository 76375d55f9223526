"""``POST /v1/senses``: a Backpack model's senses of each input token and what drives a next word's logit."""

from __future__ import annotations

from xalign.client.calls import Call, body, parsed
from xalign.client.endpoints import Endpoint, R, Resource
from xalign.client.wire import Usage, WireModel


class Sense(WireModel):
    """Sense ``sense`` of one token: its vector's norm, its weight at the last position, its top words."""

    sense: int
    norm: float
    weight: float
    top_words: list[str]


class TokenSenses(WireModel):
    """One input token, its senses, and per sense the weights it gives itself and earlier positions."""

    position: int
    id: int
    text: str
    senses: list[Sense]
    alpha: list[list[float]]  # k lists; list l = alpha[l, position, :position + 1]


class Contribution(WireModel):
    """One (position, sense) term of the next word's logit."""

    position: int
    token: str
    sense: int
    value: float


class NextWord(WireModel):
    """The logit of ``word`` at the last position, decomposed into contributions."""

    word: str
    token_id: int
    logit: float
    contributions: list[Contribution]


class SensesResult(WireModel):
    """``POST /v1/senses``'s answer."""

    object: str = "senses"
    model: str
    tokens: list[TokenSenses]
    next_word: NextWord | None = None
    usage: Usage


class SensesCalls(Resource[R]):
    """``client.senses``: a Backpack model's senses."""

    @Endpoint
    @staticmethod
    def senses(
        input: str,
        *,
        model: str | None = None,
        next_word: str | None = None,
        top_words: int | None = None,
        top_contributions: int | None = None,
    ) -> Call[SensesResult]:
        """Decompose ``input`` with a Backpack model (default: the first loaded backpack).

        >>> result = client.senses("The cat sat on the", next_word=" mat", model="tiny-backpack")
        >>> result.next_word.contributions[0].token
        ' cat'
        """
        fields = body(model=model, next_word=next_word, top_words=top_words, top_contributions=top_contributions)
        return Call("POST", "/v1/senses", parsed(SensesResult), json={"input": input, **fields})
