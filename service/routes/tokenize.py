"""``POST /v1/tokenize: the tokens and ids a model sees, prefix included``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["tokenize"])
