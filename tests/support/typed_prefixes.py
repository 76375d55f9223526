"""A store from the session's tiny one: ``tiny`` again, and its files as ``tiny-typed`` with per-type prefixes."""

from __future__ import annotations

from pathlib import Path

from xalign.modelstore import Manifest, ModelSpec, ModelStore
from xalign.modelstore.refs import parse_ref

TYPED = "tiny-typed"
# E5's prefixes; the typed model has no default prefix, so a request without input_type embeds the bare text.
PREFIXES = {"query": "query: ", "passage": "passage: "}


def republish(source: Path, store: Path, name: str, **changes: object) -> Manifest:
    """Publish the files of ``tiny`` in ``source`` as the next version of ``name`` in ``store``, spec ``changes``d."""
    version = ModelStore(source).load(parse_ref("tiny"))
    fields = version.manifest.model_dump(include=set(ModelSpec.model_fields))
    spec = ModelSpec.model_validate(fields | changes)
    files = {relative: version.file(relative) for relative in version.manifest.files}
    return ModelStore(store).publish(name, spec, files)


def typed_store(source: Path, store: Path) -> Path:
    """``store`` holding ``tiny`` (prefix ``query: ``, no types) and ``tiny-typed`` (no prefix, E5's types)."""
    republish(source, store, "tiny")
    republish(source, store, TYPED, text_prefix="", text_prefixes=PREFIXES)
    return store
