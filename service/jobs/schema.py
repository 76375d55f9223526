"""Bodies of the job API (``service/routes/bitext_jobs.py``): the request, a job as clients see it, pages of pairs.

A job's record on disk (``service/jobs/store.py``) is :class:`JobRecord`: what clients see plus the input
files the job reads, which are the service's business.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag

from xalign.runtime.margin import Margin, Retrieval
from xalign.service.limits import Name, valid_unicode
from xalign.service.routes.bitext import IndexSide, MineRequest, Pair, TextsSide

# Files per side, and characters per relative path (a path names files under the jobs folder).
MAX_FILES_PER_SIDE = 1000
MAX_PATH_CHARS = 1024
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED: tuple[JobState, ...] = ("succeeded", "failed", "cancelled")
RelativePath = Annotated[str, Field(min_length=1, max_length=MAX_PATH_CHARS), AfterValidator(valid_unicode)]


class FilesSide(BaseModel):
    """Files (or folders of files, taken sorted by name) under the jobs folder, one sentence per line."""

    model_config = ConfigDict(extra="forbid")
    files: list[RelativePath] = Field(
        min_length=1, max_length=MAX_FILES_PER_SIDE, description="paths relative to the jobs folder (XALIGN_JOBS_DIR)"
    )


def _side_kind(side: Any) -> str:
    # As the synchronous route: a key names the kind, and anything else is validated as inline texts.
    if isinstance(side, FilesSide) or (isinstance(side, dict) and "files" in side and "texts" not in side):
        return "FilesSide"
    is_index = isinstance(side, dict) and "index" in side and "texts" not in side
    return "IndexSide" if is_index or isinstance(side, IndexSide) else "TextsSide"


JobSide = Annotated[
    Annotated[TextsSide, Tag("TextsSide")]
    | Annotated[IndexSide, Tag("IndexSide")]
    | Annotated[FilesSide, Tag("FilesSide")],
    Discriminator(_side_kind),
]


class JobRequest(MineRequest):
    """A mining job: two sides, each inline texts, an index or files, and the settings of ``POST /v1/bitext/mine``."""

    # Widened on purpose: a job's side may also be files (mypy sees a narrower base type).
    src: JobSide  # type: ignore[assignment]
    tgt: JobSide  # type: ignore[assignment]
    variant: Name | None = Field(default=None, description="must be the variant served (the job embeds with it)")


class SideInfo(BaseModel):
    """Where a side comes from and how many lines it holds (blank lines and duplicates included)."""

    kind: Literal["texts", "index", "files"]
    lines: int
    index: str | None = None
    files: list[str] | None = Field(default=None, description="as given, relative to the jobs folder")


class StageProgress(BaseModel):
    """Units done of a stage (read, embed, knn, margin, write); work reused after a restart counts as done."""

    stage: str
    done: int
    total: int


class JobCounts(BaseModel):
    """Sentences and distinct texts per side, and pairs kept (once the job has succeeded)."""

    src_sentences: int
    src_unique: int
    tgt_sentences: int
    tgt_unique: int
    pairs: int


class JobInfo(BaseModel):
    """A mining job as clients see it."""

    object: Literal["bitext.job"] = "bitext.job"
    id: str
    state: JobState
    cancel_requested: bool = Field(default=False, description="a running job stops at its next task boundary")
    model: str = Field(description="the model version the job embeds with (name:version)")
    variant: str
    margin: Margin
    k: int
    retrieval: Retrieval
    threshold: float | None
    src: SideInfo
    tgt: SideInfo
    progress: list[StageProgress] = Field(default_factory=list)
    counts: JobCounts | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = Field(default=None, description="why the job failed")


class JobRecord(JobInfo):
    """A job as ``job.json`` holds it: what clients see and the absolute input files of each side."""

    inputs: dict[str, list[str]] = Field(default_factory=dict)

    def info(self) -> JobInfo:
        """What clients see of the record."""
        return JobInfo.model_validate(self.model_dump(exclude={"inputs"}))


class JobList(BaseModel):
    """Every job the service holds, oldest first."""

    object: Literal["list"] = "list"
    data: list[JobInfo]


class DeletedJob(JobInfo):
    """A finished job as it was when ``DELETE`` removed it."""

    deleted: Literal[True] = True


class PairsPage(BaseModel):
    """Mined pairs ``offset`` to ``offset + len(data)``, best first; ids are sentence numbers of each side
    (rows of inline texts, ids of an index, non-blank lines of the files counted from 0)."""

    object: Literal["list"] = "list"
    data: list[Pair]
    offset: int
    total: int
    has_more: bool
