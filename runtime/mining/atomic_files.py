"""Files of the mining job written whole or not at all: a temp file beside the target, fsync, rename.

A job killed at any instruction leaves each of its files either absent or complete (plus, at worst, a
hidden ``.NAME.PID.tmp`` that :func:`remove_stale_temps` clears on the next start), which is what lets a
restarted job trust every shard and neighbour file it finds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from xalign.modelstore.integrity import fsync_dir, fsync_file

TEMP_SUFFIX = ".tmp"


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path`` to write; on success it replaces ``path``, on an error it is removed.

    Write to the yielded path by name or through a handle opened on it (``np.save`` to a handle: given a
    name it would append ``.npy``). The file is fsynced before the rename and the folder after it.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")
    try:
        yield tmp
        fsync_file(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with UTF-8 ``text`` atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def remove_stale_temps(folder: Path) -> int:
    """Delete the temp files killed writers left under ``folder`` (recursively); return how many."""
    stale = [p for p in folder.rglob(f".*{TEMP_SUFFIX}") if p.is_file()] if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)
