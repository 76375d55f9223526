"""``POST /v1/senses``: a Backpack model's senses of each input token and what drives a next word's logit."""

from __future__ import annotations

from fastapi import APIRouter

from xalign.service.dependencies import RegistryDep, SettingsDep
from xalign.service.limits import check_text
from xalign.service.openapi import EMBEDS, error_responses
from xalign.service.senses.explain import explain
from xalign.service.senses.schema import SensesRequest, SensesResponse

router = APIRouter(tags=["senses"])


@router.post("/v1/senses", responses=error_responses(*EMBEDS))
async def create_senses(request: SensesRequest, registry: RegistryDep, settings: SettingsDep) -> SensesResponse:
    """Decompose one text with the requested backpack model (default: the first loaded backpack).

    400 for a model without senses and for an input over the model's token limit (never truncated).
    """
    check_text(request.input, settings, "input")
    model, engine = await registry.get_senses(request.model)
    # Tokenising, the forward pass and building k x seq^2 weights are milliseconds of blocking work:
    # off the loop, in one of the model's bounded senses slots (429 when all are busy).
    return await model.senses_slots.run(explain, engine, request, model.id)
