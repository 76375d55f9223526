"""Job records on disk: ``<data_dir>/jobs/<id>/`` holds ``job.json`` (written atomically), the inputs copied
from the request, the mining job's work folder and its results.

Layout of one job::

    job.json        the record (service/jobs/schema.py: JobRecord)
    input/src.txt   inline or index texts, one per line (files sides are read where they are)
    work/           the mining job's shards and neighbours (runtime/mining/job.py), what makes it resumable
    pairs.tsv       the mining job's own output
    pairs.jsonl     the pairs as the API serves them (service/jobs/pairs.py)

A job folder is made whole or not at all: it is filled under a hidden ``.new-<id>`` name and renamed, and
a hidden folder left by a killed submission is removed at the next start.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from xalign.modelstore.integrity import fsync_dir
from xalign.runtime.mining.atomic_files import write_text_atomic
from xalign.service.jobs.schema import JobRecord

log = logging.getLogger("xalign.service")

RECORD = "job.json"
STAGING = ".new-"


def new_job_id() -> str:
    """A fresh job id: 32 lower-case hex digits."""
    return uuid.uuid4().hex


class JobStore:
    """The job folders under ``root``; ``lock`` guards every record's fields and every write of them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.RLock()

    def folder(self, job_id: str) -> Path:
        """The folder of a job."""
        return self.root / job_id

    @staticmethod
    def put_texts(folder: Path, side: str, texts: list[str]) -> Path:
        """Write a side's texts, one per line, into a job folder being created; return the file's final path."""
        path = folder / "input" / f"{side}.txt"
        path.parent.mkdir(exist_ok=True)
        write_text_atomic(path, "".join(text + "\n" for text in texts))
        return path.parent.parent.with_name(path.parent.parent.name.removeprefix(STAGING)) / "input" / path.name

    @contextmanager
    def creating(self, job_id: str) -> Iterator[Path]:
        """Yield a staging folder to fill; it becomes the job's folder on success and is removed on error."""
        staging = self.root / f"{STAGING}{job_id}"
        staging.mkdir(parents=True)
        try:
            yield staging
            staging.rename(self.folder(job_id))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        fsync_dir(self.root)

    def save(self, record: JobRecord, folder: Path | None = None) -> None:
        """Write ``record`` to its ``job.json`` atomically (its current fields, under the lock)."""
        with self.lock:
            text = record.model_dump_json(indent=2) + "\n"
            write_text_atomic((folder or self.folder(record.id)) / RECORD, text)

    def update(self, record: JobRecord, change: Callable[[JobRecord], None]) -> None:
        """Apply ``change`` to ``record`` under the lock and save it."""
        with self.lock:
            change(record)
            self.save(record)

    def load_all(self) -> list[JobRecord]:
        """Every job found, oldest first; staging folders of killed submissions are removed."""
        if not self.root.is_dir():
            return []
        records = []
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(STAGING):
                shutil.rmtree(folder, ignore_errors=True)
            elif folder.is_dir():
                record = self._read(folder)
                if record is not None:
                    records.append(record)
        return sorted(records, key=lambda r: r.created_at)

    def _read(self, folder: Path) -> JobRecord | None:
        try:
            return JobRecord.model_validate_json((folder / RECORD).read_text(encoding="utf-8"))
        except (OSError, ValidationError) as exc:
            log.error("job folder %s has no readable %s (%s): left as it is", folder, RECORD, exc)
            return None

    def delete(self, job_id: str) -> None:
        """Remove a job's folder (its results included)."""
        shutil.rmtree(self.folder(job_id), ignore_errors=True)
