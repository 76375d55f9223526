"""``ModelStore``: list, resolve, verify, load, promote and roll back versions in a store folder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from xalign.modelstore import aliases as alias_ops
from xalign.modelstore.errors import ModelNotFoundError, ReferenceNotFoundError
from xalign.modelstore.history import AliasEvent
from xalign.modelstore.integrity import verify_files
from xalign.modelstore.layout import existing_versions, model_names
from xalign.modelstore.manifest import Manifest, ModelSpec, read_manifest
from xalign.modelstore.names import validate_name
from xalign.modelstore.publish import ProgressHook, publish
from xalign.modelstore.refs import ModelRef


@dataclass(frozen=True)
class ModelVersion:
    """A verified published version: its folder and manifest."""

    path: Path
    manifest: Manifest

    def file(self, relative: str) -> Path:
        """Absolute path of one of the version's files."""
        return self.path / relative


class ModelStore:
    """A model store rooted at a folder (layout and contract: docs/architecture.md)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def models(self) -> list[str]:
        """Names of the models that have at least one published version."""
        return [n for n in model_names(self.root) if existing_versions(self.root / n)]

    def versions(self, name: str) -> list[int]:
        """Published versions of ``name``, ascending; ``ModelNotFoundError`` if there are none."""
        found = existing_versions(self._model_dir(name))
        if not found:
            raise ModelNotFoundError(f"no model named {name!r} in {self.root}")
        return found

    def aliases(self, name: str) -> dict[str, int]:
        """Alias → version of ``name``."""
        self.versions(name)
        return alias_ops.read_aliases(self._model_dir(name))

    def resolve(self, ref: ModelRef) -> int:
        """The version a reference names; no reference means the production alias, else the latest."""
        versions = self.versions(ref.name)
        if ref.version is not None:
            if ref.version not in versions:
                raise ReferenceNotFoundError(f"{ref.name} has no version {ref.version} (has {versions})")
            return ref.version
        if ref.alias == "latest":
            return versions[-1]
        aliases = alias_ops.read_aliases(self._model_dir(ref.name))
        if ref.alias is None:
            return aliases.get(alias_ops.DEFAULT_ALIAS, versions[-1])
        if ref.alias not in aliases:
            raise ReferenceNotFoundError(f"{ref.name} has no alias {ref.alias!r} (has {sorted(aliases)})")
        return aliases[ref.alias]

    def manifest(self, ref: ModelRef) -> Manifest:
        """The manifest of the version ``ref`` resolves to, without checking file checksums."""
        version = self.resolve(ref)
        return read_manifest(self._model_dir(ref.name) / str(version))

    def load(self, ref: ModelRef) -> ModelVersion:
        """Resolve and verify every file's sha256; ``CorruptFileError`` names the first bad file."""
        version = self.resolve(ref)
        path = self._model_dir(ref.name) / str(version)
        manifest = read_manifest(path)
        verify_files(path, manifest.files)
        return ModelVersion(path=path, manifest=manifest)

    def publish(
        self, name: str, spec: ModelSpec, files: Mapping[str, Path], on_file: ProgressHook | None = None
    ) -> Manifest:
        """Publish a new version atomically (see ``modelstore.publish``)."""
        return publish(self.root, name, spec, files, on_file)

    def find_fingerprint(self, name: str, fingerprint: str) -> Manifest | None:
        """The newest version built from exactly these inputs, if any (makes rebuilds idempotent)."""
        model_dir = self._model_dir(name)
        for version in reversed(existing_versions(model_dir)):
            manifest = read_manifest(model_dir / str(version))
            if manifest.source.fingerprint == fingerprint:
                return manifest
        return None

    def promote(
        self, name: str, version: int, alias: str = alias_ops.DEFAULT_ALIAS, *, actor: str | None = None
    ) -> None:
        """Point ``alias`` at ``version``, ungated (releases to production go through ``modelstore.release``)."""
        self.versions(name)
        alias_ops.set_alias(self._model_dir(name), alias, version, actor=actor)

    def rollback(self, name: str, alias: str = alias_ops.DEFAULT_ALIAS, *, actor: str | None = None) -> int:
        """Move ``alias`` back to its previous version and return it."""
        self.versions(name)
        return alias_ops.rollback_alias(self._model_dir(name), alias, actor)

    def history(self, name: str) -> list[AliasEvent]:
        """Every recorded move of ``name``'s aliases, oldest first."""
        self.versions(name)
        return alias_ops.read_events(self._model_dir(name))

    def rollback_targets(self, name: str) -> dict[str, list[int]]:
        """Per alias, the versions it held, oldest first, current last."""
        self.versions(name)
        return alias_ops.read_history(self._model_dir(name))

    def _model_dir(self, name: str) -> Path:
        return self.root / validate_name(name)
