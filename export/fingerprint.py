"""The fingerprint of an export: what makes two exports publish the same version.

sha256 over the model folder's files, the other inputs the config names (``PublishConfig.hashed_inputs``:
parity texts, a separate tokenizer, evaluation data) and its settings (``PublishConfig.settings``). Paths,
the store, the model name and the work folder are left out: moving the inputs does not make a new model. The
manifest stores it, and a rerun with the same fingerprint publishes nothing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from xalign.export.config import PublishConfig
from xalign.modelstore.integrity import sha256_file


def fingerprint(config: PublishConfig) -> str:
    """sha256 over the model folder, the config's other inputs and every setting that shapes the version."""
    digest = hashlib.sha256()
    for relative, sha in folder_hashes(Path(config.model_dir)):
        digest.update(f"file {relative} {sha}\n".encode())
    for label, sha in config.hashed_inputs():
        digest.update(f"{label} {sha}\n".encode())
    digest.update(json.dumps(config.settings(), sort_keys=True).encode())
    return digest.hexdigest()


def folder_hashes(folder: Path) -> list[tuple[str, str]]:
    """(relative path, sha256) of every visible file under ``folder``, sorted."""
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist")
    files = [p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.parts)]
    return sorted((p.relative_to(folder).as_posix(), sha256_file(p)) for p in files)
