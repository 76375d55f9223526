"""Run by deploy/smoke.sh inside the ``trainer`` container: a tiny model for the retraining step of the smoke.

The data folder (``/data``) holds tests/support (the tiny BERT builder and recipe), the Multi30k rows and the
Tatoeba sample of tests/data. This publishes ``tiny`` version 1 into the store (a weak encoder: every token
embedded alike, measured on the Tatoeba sample) and writes a 4-step recipe (tests/support/retrain_recipe.py)
whose base is the same tiny BERT, so the trainer's version 2 passes the release gate against version 1 by a
wide margin, as in tests/e2e/test_compose_loop.py.

    python /data/seed_tiny.py /store /runs/tiny
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

DATA = Path("/data")
sys.path.insert(0, str(DATA / "support"))

import torch  # noqa: E402
import transformers  # noqa: E402
from retrain_recipe import write_recipe  # noqa: E402
from tiny_models import build_model_dir, publish_tiny  # noqa: E402


def weak_copy(model_dir: Path, target: Path) -> Path:
    """``model_dir`` with every token's embedding replaced by the first one: valid, but it barely aligns."""
    shutil.copytree(model_dir, target, dirs_exist_ok=True)
    model = transformers.BertModel.from_pretrained(target)
    with torch.no_grad():
        model.embeddings.word_embeddings.weight[:] = model.embeddings.word_embeddings.weight[0]
    model.save_pretrained(target)
    return target


def main(store: Path, folder: Path) -> None:
    """Publish the weak ``tiny:1`` into ``store``; the base and the recipe into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    base = build_model_dir(folder / "base", seed=0)
    manifest = publish_tiny(
        weak_copy(base, folder / "weak"), store, tatoeba_dir=DATA / "tatoeba", tatoeba_langs=("deu",)
    )
    recipe = write_recipe(folder, base, steps=4)  # the trainer's flags set its output and data root
    print(f"seeded tiny:{manifest.version}; recipe {recipe}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
