"""``GET /ui``: the web page, static files in ``service/ui/`` served as they are (no build step).

Only files under ``service/ui/`` with a known suffix are served: a path with ``..``, a hidden part, a backslash
or a control character, or one that resolves outside the folder (a symbolic link), answers 404 like a missing
file. Each file is revalidated on every load (``no-cache`` with an ETag, 304 when unchanged), so an upgraded
service is seen at once; the page gets a Content-Security-Policy that lets it talk to this origin only.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from xalign.service.errors import NotFoundError

router = APIRouter(tags=["ui"], include_in_schema=False)

UI_ROOT = Path(__file__).resolve().parent.parent / "ui"
INDEX = "index.html"
# Suffix → Content-Type: what the page is made of; anything else (README.md, sources) is not served.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
# The page's scripts, styles and API calls come from this origin alone; nothing from elsewhere, no framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Content-Security-Policy": CSP}


def ui_file(path: str, root: Path = UI_ROOT) -> Path:
    """The file under ``root`` that ``path`` names (empty: the index page); NotFoundError for anything else."""
    relative = path or INDEX
    pure = PurePosixPath(relative)
    unsafe = "\\" in relative or any(ord(c) < 32 for c in relative) or pure.is_absolute()
    if unsafe or any(part in ("", "..") or part.startswith(".") for part in pure.parts):
        raise NotFoundError(f"no page file {relative!r}")
    base = root.resolve()
    candidate = (base / relative).resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file() or candidate.suffix not in CONTENT_TYPES:
        raise NotFoundError(f"no page file {relative!r}")
    return candidate


def etag_of(path: Path) -> str:
    """A validator that changes whenever the file is rewritten (modification time and size)."""
    stat = path.stat()
    return f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'


@router.get("/ui")
async def ui_root() -> RedirectResponse:
    """The page lives at ``/ui/`` so that its relative links resolve; relative too, so a path prefix survives."""
    return RedirectResponse("ui/", status_code=307)


@router.get("/ui/{path:path}")
async def ui_asset(path: str, request: Request) -> Response:
    """One file of the page (``/ui/``: ``index.html``), with its content type; 304 when the ETag matches."""
    found = ui_file(path)
    etag = etag_of(found)
    headers = {**HEADERS, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return FileResponse(found, media_type=CONTENT_TYPES[found.suffix], headers=headers)
