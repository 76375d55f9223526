"""Seeding an empty store from another one: how a fresh deployment gets its first models.

The serving image carries the default models as a store built at image-build time; a deployment keeps its
store on a volume that starts empty. ``seed`` publishes every version of the source store into the
destination, oldest first, through the normal atomic publish (each file copied, fsynced and checked against
its sha256), then sets the same aliases. It changes nothing when the destination already
has a model: a deployment's own versions and aliases are never overwritten by the image's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xalign.modelstore.aliases import read_aliases, set_alias
from xalign.modelstore.manifest import Manifest, ModelSpec
from xalign.modelstore.refs import ModelRef
from xalign.modelstore.store import ModelStore


@dataclass
class SeedReport:
    """What a seed did: ``published`` ``(name, source version, destination version)``; ``skipped`` says why not."""

    published: list[tuple[str, int, int]] = field(default_factory=list)
    aliases: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: str | None = None


def spec_of(manifest: Manifest) -> ModelSpec:
    """The producer's part of a published manifest (without the identity and files the store assigns)."""
    return ModelSpec.model_validate(manifest.model_dump(include=set(ModelSpec.model_fields)))


def seed_store(destination: ModelStore, source: ModelStore) -> SeedReport:
    """Publish every version of ``source`` into ``destination`` if the latter has no model yet."""
    if destination.models():
        return SeedReport(skipped=f"{destination.root} already holds {', '.join(destination.models())}")
    if not source.models():
        return SeedReport(skipped=f"{source.root} holds no model to seed from")
    for name in source.models():  # verify everything first: a bad file must not leave a half-seeded store
        for version in source.versions(name):
            source.load(ModelRef(name=name, version=version))
    report = SeedReport()
    for name in source.models():
        numbers = {version: _copy_version(destination, source, name, version) for version in source.versions(name)}
        report.published.extend((name, old, new) for old, new in numbers.items())
        moved = {alias: numbers[version] for alias, version in read_aliases(source.root / name).items()}
        for alias, version in sorted(moved.items()):
            set_alias(destination.root / name, alias, version, action="seed", detail=f"from {source.root}")
        report.aliases[name] = moved
    return report


def _copy_version(destination: ModelStore, source: ModelStore, name: str, version: int) -> int:
    """Verify ``name:version`` in ``source``, publish it into ``destination``; its new version number."""
    loaded = source.load(ModelRef(name=name, version=version))
    files = {relative: loaded.file(relative) for relative in loaded.manifest.files}
    return destination.publish(name, spec_of(loaded.manifest), files).version
