"""``POST /v1/similarity: the cosine of each pair of texts``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["similarity"])
