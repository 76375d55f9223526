"""A job's sides as submitted: checked at once (one clear error each) and turned into files the job reads.

* inline ``texts``: the synchronous limits (``service/limits.py``) and no line break in a text (the job
  reads one text per line); written to the job's folder;
* ``index``: its texts in row order (so ids stay the index's ids), written to the job's folder;
* ``files``: paths relative to the jobs folder (``XALIGN_JOBS_DIR``), never absolute, never through ``..``
  and never leaving the folder through a symbolic link; folders stand for their visible files sorted by
  name; at most ``max_job_texts_per_side`` lines per side, counted at submission.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from xalign.runtime.mining.corpus import CorpusError, open_bytes
from xalign.service.errors import InvalidRequestError, NotFoundError, PayloadTooLargeError, UnprocessableError
from xalign.service.jobs.schema import FilesSide, SideInfo
from xalign.service.limits import check_texts
from xalign.service.routes.bitext import IndexSide, TextsSide
from xalign.service.search.index_service import IndexService, check_index_name
from xalign.service.settings import Settings, jobs_input_dir

_BLOCK = 1 << 20


@dataclass(frozen=True)
class ResolvedSide:
    """A side ready to be recorded: what clients see, texts to write into the job's folder, or files to read."""

    info: SideInfo
    texts: list[str] | None = None
    files: tuple[Path, ...] = ()
    space: tuple[str, int] | None = None  # an index side: (model, version) that embedded it


def _one_line_each(texts: Sequence[str], param: str, what: str) -> None:
    for i, text in enumerate(texts):
        if "\n" in text or "\r" in text:
            raise InvalidRequestError(f"{what}[{i}] holds a line break: a mining job reads one text per line", param)


def inline_side(side: TextsSide, settings: Settings, param: str) -> ResolvedSide:
    """Inline texts within the synchronous limits (400 empty or blank, 413 past them), one line each."""
    texts = check_texts(side.texts, settings, f"{param}.texts")
    _one_line_each(texts, f"{param}.texts", f"{param}.texts")
    return ResolvedSide(SideInfo(kind="texts", lines=len(texts)), texts=texts)


async def index_side(side: IndexSide, indexes: IndexService, settings: Settings, param: str) -> ResolvedSide:
    """An index's texts in row order (404 unknown index, 400 empty, 413 past ``max_job_texts_per_side``)."""
    name = check_index_name(side.index, f"{param}.index")
    try:
        index = indexes.get(name)
    except NotFoundError as exc:
        raise NotFoundError(exc.message, f"{param}.index", code=exc.code) from None
    meta = index.meta
    _check_count(index.count, settings, param, f"index {name!r}")
    texts = await asyncio.to_thread(index.texts)
    _one_line_each(texts, f"{param}.index", f"index {name!r} text")
    info = SideInfo(kind="index", lines=len(texts), index=name)
    return ResolvedSide(info, texts=texts, space=(meta.model, meta.model_version))


async def files_side(side: FilesSide, settings: Settings, param: str) -> ResolvedSide:
    """The side's files under the jobs folder, their lines counted on a worker thread."""
    root = jobs_input_dir(settings)
    files: list[Path] = []
    for i, relative in enumerate(side.files):
        files.extend(resolve_input(root, relative, f"{param}.files[{i}]", f"{param}.files"))
    lines = await asyncio.to_thread(count_lines, files, param)
    _check_count(lines, settings, param, "the files")
    return ResolvedSide(SideInfo(kind="files", lines=lines, files=list(side.files)), files=tuple(files))


def _check_count(lines: int, settings: Settings, param: str, what: str) -> None:
    if lines == 0:
        raise InvalidRequestError(f"{param}: {what} hold no sentence", param)
    if lines > settings.max_job_texts_per_side:
        raise PayloadTooLargeError(
            f"{param}: {what} hold {lines:,} lines, more than the {settings.max_job_texts_per_side:,} a job side "
            "may hold (XALIGN_MAX_JOB_TEXTS_PER_SIDE); split the corpus or use xalign-mine",
            param,
        )


def resolve_input(root: Path, relative: str, shown: str, param: str) -> list[Path]:
    """The files ``relative`` names under ``root`` (a folder: its visible files sorted by name), resolved.

    400 for an absolute path, ``..``, a control character or a path leaving ``root`` (a symbolic link);
    404 for a path that does not exist or a folder without a file.
    """
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts or any(ord(c) < 32 for c in relative) or "\\" in relative:
        raise InvalidRequestError(
            f"{shown} must be a path relative to the jobs folder, without '..', backslashes or control characters",
            param,
        )
    try:
        base = root.resolve()
        path = _inside(base, base / relative, shown, param)
        if path.is_file():
            return [path]
        if not path.is_dir():
            raise NotFoundError(f"{shown}: {relative!r} does not exist in the jobs folder", param)
        found = sorted((p for p in path.iterdir() if not p.name.startswith(".")), key=str)
        files = [f for f in (_inside(base, p, shown, param) for p in found) if f.is_file()]
    except (OSError, RuntimeError) as exc:  # a name too long, a loop of links, a folder we may not read
        raise InvalidRequestError(f"{shown}: {relative!r} cannot be read ({type(exc).__name__})", param) from None
    if not files:
        raise NotFoundError(f"{shown}: folder {relative!r} holds no file", param)
    return files


def _inside(base: Path, path: Path, shown: str, param: str) -> Path:
    real = path.resolve()
    if not real.is_relative_to(base):
        raise InvalidRequestError(f"{shown} leaves the jobs folder (through a symbolic link)", param)
    return real


def count_lines(files: Sequence[Path], param: str) -> int:
    """Lines of the files (``.gz`` decompressed), a last line without newline counting; 400 if unreadable."""
    total = 0
    for path in files:
        try:
            with open_bytes(path) as handle:
                ends_open = False
                while block := handle.read(_BLOCK):
                    total += block.count(b"\n")
                    ends_open = not block.endswith(b"\n")
                total += ends_open
        except (OSError, EOFError, CorpusError) as exc:
            raise InvalidRequestError(f"{param}: {path.name} cannot be read ({exc})", param) from None
    return total


def check_variant(wanted: str | None, served: str, model: str) -> None:
    """422 if the request asks for a variant other than the one served (the job embeds with the served one)."""
    if wanted is not None and wanted != served:
        raise UnprocessableError(f"{model} is served as {served!r}; a job embeds with the served variant", "variant")
