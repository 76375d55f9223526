"""The licences of the shipped corpora (../shared/data/MANIFEST.md), so a model's manifest can carry them.

A model trained on a corpus carries that corpus's terms: the non-commercial ones (Multi30k, XNLI, MUSE) make
the model non-commercial too. Data files are recorded relative to the data root, so the first path component
names the corpus folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

DATA_LICENCES: Final = {
    "multi30k": "training data Multi30k: Flickr30K terms, non-commercial research and education use",
    "ntrex128": "training data NTREX-128: CC BY-SA 4.0",
    "wmt_newstest": "training data WMT newstest: research use (licence not stated)",
    "xnli": "training data XNLI: CC BY-NC 4.0 (non-commercial)",
    "muse": "training data MUSE dictionaries: CC BY-NC 4.0 (non-commercial)",
}


def data_licences(paths: Iterable[str]) -> tuple[str, ...]:
    """The licence line of every corpus among ``paths`` (data-root-relative), in first-seen order."""
    folders = dict.fromkeys(path.replace("\\", "/").split("/")[0] for path in paths)
    return tuple(DATA_LICENCES.get(folder, f"training data {folder}: licence not recorded") for folder in folders)
