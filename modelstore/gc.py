"""Collecting what killed writers leave in a store, and repairing the alias view (``xalign-store gc``).

- ``.tmp-*`` publish folders: removed when no publisher holds their ``flock`` (``modelstore.publish``; the kernel
  drops it when the process dies, across containers sharing the volume too) and they are older than the grace
  period, which covers the instant between a publisher's ``mkdir`` and its ``flock``. A live publisher's folder
  is never removed.
- ``.aliases.json.<pid>.tmp`` and ``.alias_history.json.<pid>.tmp``: removed under the alias lock, where no
  writer can be using one.
- The alias journal is cut to its bounds and ``aliases.json`` rewritten from it (repairing a view a kill left
  one move behind).

The service runs ``collect_at_start`` when it starts on a writable store.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from xalign.modelstore.aliases import locked
from xalign.modelstore.history import commit, current_journal, disagreements, read_journal
from xalign.modelstore.layout import ALIAS_HISTORY_FILE, ALIASES_FILE, TMP_PREFIX, model_names

log = logging.getLogger(__name__)

DEFAULT_GRACE_S: Final = 60.0
_ALIAS_TEMPS: Final = tuple(f".{name}." for name in (ALIASES_FILE, ALIAS_HISTORY_FILE))


@dataclass
class GcReport:
    """What a collection found: removed leftovers, live publishers left alone, models whose aliases it fixed."""

    removed: list[Path] = field(default_factory=list)
    live: list[Path] = field(default_factory=list)
    young: list[Path] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    trimmed: list[str] = field(default_factory=list)


def collect(root: Path, grace_s: float = DEFAULT_GRACE_S) -> GcReport:
    """Collect the leftovers of every model in the store at ``root`` (see the module docstring)."""
    report = GcReport()
    for name in model_names(Path(root)):
        model_dir = Path(root) / name
        _publish_folders(model_dir, grace_s, report)
        _alias_state(model_dir, report)
    return report


def collect_at_start(root: Path, grace_s: float = DEFAULT_GRACE_S) -> GcReport | None:
    """``collect`` for a service that is starting: only on a writable store, and never raising (logged)."""
    root = Path(root)
    if not root.is_dir() or not os.access(root, os.W_OK):
        log.info("store %s is not writable: no collection of leftovers at start", root)
        return None
    try:
        report = collect(root, grace_s)
    except Exception:  # a start must not fail over housekeeping
        log.warning("collecting leftovers in %s failed; continuing", root, exc_info=True)
        return None
    if report.removed or report.repaired:
        log.info("store %s: removed %d leftovers, repaired aliases of %s", root, len(report.removed), report.repaired)
    return report


def _publish_folders(model_dir: Path, grace_s: float, report: GcReport) -> None:
    for folder in sorted(model_dir.glob(f"{TMP_PREFIX}*")):
        if not folder.is_dir():
            continue
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:  # its publisher just renamed or removed it
            continue
        try:
            _collect_folder(folder, fd, grace_s, report)
        finally:
            os.close(fd)


def _collect_folder(folder: Path, fd: int, grace_s: float, report: GcReport) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        report.live.append(folder)
        return
    except OSError:  # no flock on this filesystem: the grace period alone decides
        pass
    if time.time() - os.fstat(fd).st_mtime < grace_s:
        report.young.append(folder)
        return
    shutil.rmtree(folder, ignore_errors=True)
    report.removed.append(folder)


def _alias_state(model_dir: Path, report: GcReport) -> None:
    temps = [p for p in model_dir.iterdir() if p.name.startswith(_ALIAS_TEMPS) and p.name.endswith(".tmp")]
    if not temps and not (model_dir / ALIASES_FILE).exists() and not (model_dir / ALIAS_HISTORY_FILE).exists():
        return
    with locked(model_dir):
        for temp in model_dir.iterdir():
            if temp.name.startswith(_ALIAS_TEMPS) and temp.name.endswith(".tmp"):
                temp.unlink(missing_ok=True)
                report.removed.append(temp)
        if disagreements(model_dir):
            report.repaired.append(model_dir.name)
        stored = read_journal(model_dir)
        journal = current_journal(model_dir)
        if stored is not None and journal.bounded() != journal:
            report.trimmed.append(model_dir.name)
        commit(model_dir, journal.bounded())
