"""What a model was trained on: the data files with checksums and line counts, for the checkpoint manifest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from xalign.modelstore.integrity import sha256_file
from xalign.modelstore.manifest import DataFile
from xalign.training.data.errors import DataError
from xalign.training.data.lines import count_lines


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes (``modelstore.integrity.sha256_file``, read in chunks)."""
    return sha256_file(Path(path))


@dataclass(frozen=True)
class CorpusFile:
    """One data file: path as recorded (relative to the data root when one was given), checksum, size."""

    path: str
    sha256: str
    lines: int
    bytes: int
    lang: str | None = None


@dataclass(frozen=True)
class Corpus:
    """A named set of data files, e.g. ``multi30k/train`` with its four language files."""

    name: str
    files: tuple[CorpusFile, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, e.g. for a checkpoint's record."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Corpus:
        """Inverse of ``to_dict``."""
        return cls(name=data["name"], files=tuple(CorpusFile(**entry) for entry in data["files"]))

    def data_files(self) -> list[DataFile]:
        """The files as the model manifest records them (``SourceInfo.data_files``)."""
        return [DataFile(path=f.path, sha256=f.sha256) for f in self.files]

    def verify(self, root: Path | None = None) -> None:
        """``DataError`` naming the first file whose sha256 differs from the recorded one."""
        for entry in self.files:
            path = Path(root) / entry.path if root is not None else Path(entry.path)
            actual = sha256_of(path)
            if actual != entry.sha256:
                raise DataError(path, f"sha256 {actual[:12]}… differs from the recorded {entry.sha256[:12]}…")


def describe_corpus(name: str, files: Mapping[str, Path] | Sequence[Path], root: Path | None = None) -> Corpus:
    """Checksums and line counts of ``files`` (language -> path, or a list of paths), in the given order.

    With ``root``, paths are recorded relative to it (``multi30k/train.en``), so a record does not
    depend on where the data folder was mounted.
    """
    items = list(files.items()) if isinstance(files, Mapping) else [(None, path) for path in files]
    return Corpus(name=name, files=tuple(_describe_file(Path(path), lang, root) for lang, path in items))


def _describe_file(path: Path, lang: str | None, root: Path | None) -> CorpusFile:
    shown = path.resolve().relative_to(Path(root).resolve()).as_posix() if root is not None else path.as_posix()
    return CorpusFile(path=shown, sha256=sha256_of(path), lines=count_lines(path), bytes=path.stat().st_size, lang=lang)
