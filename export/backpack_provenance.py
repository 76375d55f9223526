"""What a published Backpack says about where it came from, read from its training manifest.

A Backpack checkpoint folder (``training.backpack_training``) carries ``training_manifest.json``: the recipe
file, every data file's sha256, the steps and the last metrics. ``backpack_config`` turns that into the
``BackpackExportConfig`` that ``xalign-export backpack`` publishes, so the store's manifest names the recipe
and data that made the weights without the caller restating them. A folder without the manifest (a model
trained elsewhere) publishes with the caller's provenance only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from xalign.export.backpack import BackpackExportConfig
from xalign.modelstore.manifest import DataFile
from xalign.training.backpack_training.manifest import MANIFEST_FILE, read_manifest
from xalign.training.data.licences import data_licences

BASE_MODEL = "Backpack LM trained from scratch (xalign, training/recipes/backpack)"


def backpack_config(
    model_dir: Path,
    store: Path,
    name: str,
    *,
    languages: Sequence[str] = (),
    licenses: Sequence[str] = (),
    evaluation: Mapping[str, Mapping[str, float]] | None = None,
) -> BackpackExportConfig:
    """The export of ``model_dir`` as ``name``, with provenance from its training manifest when it has one."""
    config = BackpackExportConfig(
        model_dir=model_dir,
        store=store,
        name=name,
        base_model=BASE_MODEL,
        languages=tuple(languages),
        licenses=tuple(licenses),
        evaluation=dict(evaluation or {}),
    )
    if not (Path(model_dir) / MANIFEST_FILE).is_file():
        return config
    trained = read_manifest(Path(model_dir))
    files = tuple(DataFile(path=f.path, sha256=f.sha256) for corpus in trained.data for f in corpus.files)
    licences = tuple(dict.fromkeys((*config.licenses, *data_licences(f.path for f in files))))
    return replace(
        config, recipe=trained.recipe_file or trained.name, data_files=files, steps=trained.step, licenses=licences
    )
