"""``GET /ui: the web page (static files in service/ui/, no build step)``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["ui"])
