"""``POST /v1/rerank: documents ranked by cosine to a query, in the served embedding space``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["rerank"])
