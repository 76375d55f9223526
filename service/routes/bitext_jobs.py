"""``/v1/bitext/jobs``: mining jobs for inputs past the synchronous ``POST /v1/bitext/mine``.

Submit answers 202 at once with the job; poll ``GET /v1/bitext/jobs/{job_id}``; page through the pairs, or
stream them as JSON lines, once it has succeeded; ``DELETE`` cancels a queued or running job and removes a
finished one. Jobs run in the background (``service/jobs/worker.py``) and survive restarts
(``service/jobs/store.py``).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from xalign.modelstore.refs import parse_ref
from xalign.service.dependencies import IndexesDep, RegistryDep, SettingsDep
from xalign.service.errors import ConflictError, NotFoundError, UnprocessableError
from xalign.service.jobs.inputs import ResolvedSide, check_variant, files_side, index_side, inline_side
from xalign.service.jobs.pairs import PAIRS, pair_lines, read_pairs
from xalign.service.jobs.schema import (
    FINISHED,
    DeletedJob,
    FilesSide,
    JobInfo,
    JobList,
    JobRecord,
    JobRequest,
    JobSide,
    PairsPage,
)
from xalign.service.jobs.store import JobStore, new_job_id
from xalign.service.jobs.worker import JobRunner, now_utc
from xalign.service.loaded_model import LoadedModel
from xalign.service.openapi import EMBEDS, error_responses
from xalign.service.registry import ModelRegistry
from xalign.service.routes.bitext import IndexSide, Pair, TextsSide
from xalign.service.search.index_service import IndexService
from xalign.service.settings import Settings

router = APIRouter(tags=["bitext jobs"])

JobId = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="the id the submission answered")]
NDJSON = "application/x-ndjson"
# Pairs per JSON page: the default and the most.
PAGE, MAX_PAGE = 100, 1000


async def get_jobs(request: Request) -> JobRunner:
    """The app's mining job runner."""
    return cast(JobRunner, request.app.state.jobs)


JobsDep = Annotated[JobRunner, Depends(get_jobs)]


async def _side(side: JobSide, indexes: IndexService, settings: Settings, param: str) -> ResolvedSide:
    if isinstance(side, TextsSide):
        return inline_side(side, settings, param)
    if isinstance(side, IndexSide):
        return await index_side(side, indexes, settings, param)
    assert isinstance(side, FilesSide)
    return await files_side(side, settings, param)


async def _model(
    request: JobRequest, sides: tuple[ResolvedSide, ResolvedSide], registry: ModelRegistry, indexes: IndexService
) -> LoadedModel:
    """The version the job embeds with: the one that embedded its index sides, else the requested model."""
    spaces = {side.space for side in sides if side.space is not None}
    if len(spaces) > 1:
        raise ConflictError(
            "the two indexes are in different embedding spaces; mine them once both are re-embedded",
            code="embedding_spaces_differ",
        )
    if not spaces:
        return await registry.get(request.model)
    name, version = spaces.pop()
    if request.model is not None and parse_ref(request.model).name != name:
        raise ConflictError(f"model {request.model!r} differs from {name}:{version}, which embedded the index", "model")
    return indexes.model_for_space(name, version)


def _record(job_id: str, request: JobRequest, loaded: LoadedModel, sides: tuple[ResolvedSide, ...]) -> JobRecord:
    return JobRecord(
        id=job_id,
        state="queued",
        model=loaded.id,
        variant=loaded.variant,
        **request.model_dump(include={"margin", "k", "retrieval", "threshold"}),
        src=sides[0].info,
        tgt=sides[1].info,
        created_at=now_utc(),
    )


def _create(store: JobStore, record: JobRecord, sides: tuple[ResolvedSide, ResolvedSide]) -> None:
    """The job's folder, whole: texts of inline and index sides, then ``job.json`` (none of it on an error)."""
    with store.creating(record.id) as folder:
        for name, side in zip(("src", "tgt"), sides, strict=True):
            files = [store.put_texts(folder, name, side.texts)] if side.texts is not None else side.files
            record.inputs[name] = [str(f) for f in files]
        store.save(record, folder)


@router.post(
    "/v1/bitext/jobs",
    status_code=202,
    responses=error_responses(*EMBEDS, ConflictError),
)
async def submit_job(
    request: JobRequest,
    response: Response,
    *,
    registry: RegistryDep,
    indexes: IndexesDep,
    settings: SettingsDep,
    jobs: JobsDep,
) -> JobInfo:
    """Start a mining job (202 at once): each side inline ``texts`` (the synchronous limits), an ``index``, or
    ``files`` under the jobs folder (up to ``max_job_texts_per_side`` lines). 429 with Retry-After when
    ``max_queued_jobs`` are waiting. A refused job leaves nothing behind."""
    jobs.check_room()
    sides = (await _side(request.src, indexes, settings, "src"), await _side(request.tgt, indexes, settings, "tgt"))
    loaded = await _model(request, sides, registry, indexes)
    check_variant(request.variant, loaded.variant, loaded.id)
    jobs.check_room()  # again: other submissions may have come in while the sides were checked
    job_id = new_job_id()
    record = _record(job_id, request, loaded, sides)
    await asyncio.to_thread(_create, jobs.store, record, sides)  # an index side may be a million texts
    jobs.enqueue(record)
    response.headers["Location"] = f"/v1/bitext/jobs/{job_id}"
    return record.info()


@router.get("/v1/bitext/jobs")
async def list_jobs(jobs: JobsDep) -> JobList:
    """Every job this service holds, oldest first."""
    return JobList(data=[jobs.snapshot(r).info() for r in list(jobs.records.values())])


@router.get("/v1/bitext/jobs/{job_id}", responses=error_responses(NotFoundError))
async def get_job(job_id: JobId, jobs: JobsDep) -> JobInfo:
    """A job's state, progress per stage, counts, timestamps and, if it failed, why."""
    return jobs.snapshot(jobs.get(job_id)).info()


@router.get(
    "/v1/bitext/jobs/{job_id}/pairs",
    response_model=PairsPage,
    responses={
        200: {"content": {NDJSON: {"schema": {"type": "string"}}}, "description": "a page, or JSON lines"},
        **error_responses(NotFoundError, ConflictError),
    },
)
async def job_pairs(
    job_id: JobId,
    jobs: JobsDep,
    *,
    offset: Annotated[int, Query(ge=0, description="first pair (0: the best)")] = 0,
    limit: Annotated[
        int | None, Query(ge=1, description=f"pairs (JSON: default {PAGE}, at most {MAX_PAGE}; JSON lines: all)")
    ] = None,
    format: Annotated[
        Literal["json", "jsonl"] | None, Query(description="jsonl: JSON lines (as Accept: application/x-ndjson)")
    ] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """The pairs of a succeeded job, best first: a JSON page, or with ``Accept: application/x-ndjson`` (or
    ``format=jsonl``) a stream of JSON lines. 409 while the job has not succeeded."""
    record = jobs.snapshot(jobs.get(job_id))
    if record.state != "succeeded" or record.counts is None:
        raise ConflictError(f"mining job {job_id} is {record.state}: pairs are served once it has succeeded", "job_id")
    path = jobs.store.folder(job_id) / PAIRS
    lines = format == "jsonl" or (format is None and NDJSON in (accept or ""))
    if lines:
        return StreamingResponse(pair_lines(path, offset, limit), media_type=NDJSON)
    if limit is not None and limit > MAX_PAGE:
        raise UnprocessableError(f"limit: at most {MAX_PAGE} pairs per JSON page (JSON lines have no limit)", "limit")
    total = record.counts.pairs
    data = [Pair.model_validate(p) for p in read_pairs(path, offset, limit or PAGE)]
    return PairsPage(data=data, offset=offset, total=total, has_more=offset + len(data) < total)


@router.delete(
    "/v1/bitext/jobs/{job_id}",
    responses={
        202: {"model": JobInfo, "description": "cancelled (a running job stops at its next task boundary)"},
        **error_responses(NotFoundError),
    },
)
async def delete_job(job_id: JobId, response: Response, jobs: JobsDep) -> JobInfo | DeletedJob:
    """Cancel a queued or running job (202), or remove a finished one and its results (200)."""
    record = jobs.get(job_id)
    if record.state in FINISHED:
        removed = jobs.snapshot(jobs.delete(job_id))
        return DeletedJob.model_validate(removed.info().model_dump())
    response.status_code = 202
    return jobs.snapshot(jobs.cancel(job_id)).info()
