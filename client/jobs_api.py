"""``/v1/bitext/jobs``: mining jobs for inputs past the synchronous route (submit, poll, pairs, cancel)."""

from __future__ import annotations

from datetime import datetime
from typing import Unpack

import httpx
from pydantic import Field

from xalign.client.bitext_api import JobSide, MiningSettings, Pair, mining_body
from xalign.client.calls import Call, body, decoded, parsed, segment, validated
from xalign.client.endpoints import Endpoint, R, Resource
from xalign.client.wire import WireModel

NDJSON = "application/x-ndjson"
# States after which a job changes no more.
FINISHED = frozenset({"succeeded", "failed", "cancelled"})


class SideInfo(WireModel):
    """Where a side comes from (``texts``, ``index``, ``files``) and how many lines it holds."""

    kind: str
    lines: int
    index: str | None = None
    files: list[str] | None = None


class StageProgress(WireModel):
    """Units done of a stage (read, embed, knn, margin, write)."""

    stage: str
    done: int
    total: int


class JobCounts(WireModel):
    """Sentences and distinct texts per side, and pairs kept (once the job has succeeded)."""

    src_sentences: int
    src_unique: int
    tgt_sentences: int
    tgt_unique: int
    pairs: int


class Job(WireModel):
    """A mining job: ``state`` is queued, running, succeeded, failed or cancelled; ``deleted`` once removed."""

    object: str = "bitext.job"
    id: str
    state: str
    error: str | None = None  # why the job failed
    cancel_requested: bool = False  # a running job stops at its next task boundary
    progress: list[StageProgress] = Field(default_factory=list)
    counts: JobCounts | None = None
    src: SideInfo
    tgt: SideInfo
    model: str  # the model version the job embeds with (name:version)
    variant: str
    margin: str
    k: int
    retrieval: str
    threshold: float | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    deleted: bool = False

    @property
    def finished(self) -> bool:
        """Whether the job has stopped changing (succeeded, failed or cancelled)."""
        return self.state in FINISHED


class JobList(WireModel):
    """Every job the service holds, oldest first."""

    object: str = "list"
    data: list[Job]


class PairsPage(WireModel):
    """Pairs ``offset`` to ``offset + len(data)`` of a succeeded job, best first, of ``total``."""

    object: str = "list"
    data: list[Pair]
    offset: int
    total: int
    has_more: bool


class Jobs(Resource[R]):
    """``client.jobs``: submit, poll, page through pairs, cancel or delete mining jobs (both clients).

    Waiting and streaming, written for each client, are in ``client/jobs_resource.py``.
    """

    @Endpoint
    @staticmethod
    def create(
        src: JobSide, tgt: JobSide, *, variant: str | None = None, **settings: Unpack[MiningSettings]
    ) -> Call[Job]:
        """Submit a mining job; answered at once (202) with the queued job. Sides: texts, IndexSide or FilesSide.

        >>> job = client.jobs.create(FilesSide(["de.txt"]), FilesSide(["en.txt"]), threshold=1.06)
        >>> client.jobs.wait(job.id, progress=print).state
        'succeeded'
        """
        json = mining_body(src, tgt, settings)
        # Creates a job: sent again only after a 429/503, which the service answers before creating anything.
        return Call("POST", "/v1/bitext/jobs", parsed(Job), json=json | body(variant=variant), idempotent=False)

    @Endpoint
    @staticmethod
    def get(job_id: str) -> Call[Job]:
        """A job's state, progress per stage, counts, timestamps and, if it failed, why.

        >>> [(p.stage, p.done, p.total) for p in client.jobs.get(job.id).progress]
        [('read', 2, 2), ('embed', 1, 4)]
        """
        return Call("GET", f"/v1/bitext/jobs/{segment(job_id)}", parsed(Job))

    @Endpoint
    @staticmethod
    def list() -> Call[JobList]:
        """Every job the service holds, oldest first.

        >>> [(job.id, job.state) for job in client.jobs.list().data]
        """
        return Call("GET", "/v1/bitext/jobs", parsed(JobList))

    @Endpoint
    @staticmethod
    def pairs(job_id: str, *, offset: int = 0, limit: int | None = None) -> Call[PairsPage]:
        """One page of a succeeded job's pairs, best first (the service's default page without ``limit``; 409 before).

        >>> page = client.jobs.pairs(job.id, offset=0, limit=100)
        >>> page.total, page.has_more
        (1517, True)
        """
        params = body(offset=offset, limit=limit, format="json")
        return Call("GET", f"/v1/bitext/jobs/{segment(job_id)}/pairs", parsed(PairsPage), params=params)

    @Endpoint
    @staticmethod
    def delete(job_id: str) -> Call[Job]:
        """Cancel a queued or running job (it stops at its next task boundary), or remove a finished one.

        >>> client.jobs.delete(job.id).state
        'running'
        """
        # Not retried after a connection error: sent twice, a cancel could remove the job it cancelled.
        return Call("DELETE", f"/v1/bitext/jobs/{segment(job_id)}", parsed(Job), idempotent=False)

    # The same route: a queued or running job is cancelled (a finished one would be removed).
    cancel = delete


def stream_pairs_call(job_id: str, offset: int = 0, limit: int | None = None) -> Call[str]:
    """The JSON lines request of a job's pairs (all of them from ``offset`` without ``limit``)."""
    params = body(offset=offset, limit=limit, format="jsonl")
    headers = {"accept": NDJSON}
    return Call("GET", f"/v1/bitext/jobs/{segment(job_id)}/pairs", _text, params=params, headers=headers)


def pair_of_line(line: str, request_id: str | None = None) -> Pair:
    """One JSON line of the pairs stream as a :class:`Pair`."""
    return validated(Pair, decoded(line), request_id)


def _text(response: httpx.Response) -> str:
    return response.text
