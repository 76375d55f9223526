"""The training recipe: what to train, on which data, with which objectives and settings.

Every table of a recipe TOML file (``loader.py`` reads it) maps to one frozen pydantic dataclass here
(``base.py``: types checked by pydantic, unknown keys refused). Each one checks its values across fields in
``__post_init__`` and raises ``RecipeError`` naming the field; the loader adds where in the file the table is
(``data[2].split: ...``). Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, ValidationInfo
from pydantic.dataclasses import dataclass

from xalign.training.recipes.base import RECIPE_CONFIG, DataPath, RecipePath, recipe_dir_of, require, resolve_path
from xalign.training.recipes.efficiency import HardNegatives, check_efficiency

ObjectiveName = Literal[
    "translation_ranking", "multiway_contrastive", "representation_translation", "align_mlm", "mlm",
    "embedding_distillation",
]  # fmt: skip
SourceKind = Literal["multi30k", "ntrex", "wmt", "xnli", "aligned", "tsv"]
Pairing = Literal["english_centric", "multiway"]
Decay = Literal["linear", "cosine", "constant"]
Device = Literal["auto", "cpu", "cuda"]
Pooling = Literal["mean", "cls", "last"]
ParamValue = bool | int | float | str

# The converted multilingual-e5-small of training.models.offline_e5 (no model hub here).
OFFLINE_E5: Final = "offline:e5-small"
# Objectives that contrast a batch against itself: they need at least two examples per batch.
CONTRASTIVE: Final = frozenset({"translation_ranking", "multiway_contrastive"})
TATOEBA_DEV_LANGS: Final = ("deu", "fra", "ces", "spa", "rus")

# Every parameter an objective accepts, with its default; an int default of 0 means "derive it" (see tasks).
OBJECTIVE_PARAMS: Final[Mapping[str, Mapping[str, ParamValue]]] = {
    "translation_ranking": {"temperature": 0.05, "symmetric": True, "margin": 0.0},
    "multiway_contrastive": {"temperature": 0.05, "margin": 0.0},
    "representation_translation": {"num_layers": 2, "num_heads": 0, "bidirectional": False},
    "mlm": {"mask_prob": 0.15},
    "align_mlm": {"mask_prob": 0.15, "dictionary_weight": 1.0, "word_pairs": 64},
    "embedding_distillation": {"anchor_weight": 1.0},
}

# What ``split`` means per source kind; kinds absent here take no split.
_SPLITS: Final[Mapping[str, str]] = {
    "multi30k": "the split, train or val",
    "xnli": "the split, dev or test",
    "wmt": "the test set name, e.g. newstest2012",
}


DEFAULT_CACHE = Path(".cache/xalign")  # the Makefile's CACHE, in the working directory


def _model_ref(value: str, info: ValidationInfo) -> str:
    """A base folder relative to the recipe file's folder; the offline base stays a name."""
    recipe_dir = recipe_dir_of(info)
    return value if recipe_dir is None or value.startswith("offline:") else str(resolve_path(recipe_dir, value))


ModelRef = Annotated[str, AfterValidator(_model_ref)]


def _check_langs(langs: tuple[str, ...], name: str, minimum: int) -> None:
    require(len(langs) >= minimum, name, f"needs at least {minimum} language(s), got {list(langs)}")
    require(len(set(langs)) == len(langs), name, f"repeats a language: {list(langs)}")
    require(all(lang.strip() == lang and lang for lang in langs), name, f"has an empty or padded code: {list(langs)}")


@dataclass(frozen=True, config=RECIPE_CONFIG)
class DataSource:
    """One parallel corpus.

    ``path`` is the corpus folder (multi30k, ntrex, wmt, xnli) or the file (tsv: one column per language of
    ``langs``, tab-separated); ``aligned`` takes ``files`` (language → line-aligned text file) instead.
    A tsv source has two languages, read from ``columns`` (0-based) of each line. ``max_rows`` keeps only the
    first rows (quick runs).
    """

    kind: SourceKind
    langs: tuple[str, ...] = ()
    path: DataPath | None = None
    split: str | None = None
    files: Mapping[str, DataPath] = field(default_factory=dict)
    columns: tuple[int, ...] = (0, 1)
    max_rows: int | None = None

    def __post_init__(self) -> None:
        if self.kind == "aligned":
            require(self.path is None, "path", "aligned sources take files = {lang = path}, not path")
            require(len(self.files) >= 2, "files", "an aligned source needs at least two language files")
            require(not self.langs or set(self.langs) == set(self.files), "langs", "must equal the keys of files")
        else:
            require(self.path is not None, "path", f"a {self.kind} source needs a path")
            require(not self.files, "files", "only aligned sources take files")
            _check_langs(self.langs, "langs", 2)
        if self.kind == "tsv":
            require(len(self.langs) == 2, "langs", "a tsv source has exactly two languages")
            ok = len(self.columns) == 2 and min(self.columns) >= 0 and self.columns[0] != self.columns[1]
            require(ok, "columns", f"must be two different column indices, got {list(self.columns)}")
        else:
            require(self.columns == (0, 1), "columns", "only tsv sources take columns")
        if self.kind in _SPLITS:
            require(bool(self.split), "split", f"a {self.kind} source needs {_SPLITS[self.kind]}")
        else:
            require(self.split is None, "split", f"a {self.kind} source takes no split")
        require(self.max_rows is None or self.max_rows >= 1, "max_rows", "must be at least 1")

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages this source provides (``langs``, or the keys of ``files``)."""
        return self.langs or tuple(self.files)


@dataclass(frozen=True, config=RECIPE_CONFIG)
class Dictionary:
    """A bilingual word dictionary (MUSE) for ``align_mlm``: ``src_lang`` words and their ``tgt_lang`` translations."""

    path: DataPath
    src_lang: str
    tgt_lang: str

    def __post_init__(self) -> None:
        _check_langs((self.src_lang, self.tgt_lang), "src_lang/tgt_lang", 2)


@dataclass(frozen=True, config=RECIPE_CONFIG)
class Objective:
    """One loss of the mix: its ``name``, its ``weight`` in the total loss, and its ``params``."""

    name: ObjectiveName
    weight: float = 1.0
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require(math.isfinite(self.weight) and self.weight > 0, "weight", f"must be positive, got {self.weight}")
        known = OBJECTIVE_PARAMS[self.name]
        for key, value in self.params.items():
            require(key in known, f"params.{key}", f"unknown for {self.name}; known: {', '.join(sorted(known))}")
            expected = type(known[key])
            ok = isinstance(value, expected) or (expected is float and type(value) is int)
            require(
                ok and (expected is bool) == isinstance(value, bool), f"params.{key}", f"must be {expected.__name__}"
            )

    def param(self, key: str) -> ParamValue:
        """The value of ``key``: from ``params`` if given, else the objective's default."""
        return self.params.get(key, OBJECTIVE_PARAMS[self.name][key])


@dataclass(frozen=True, config=RECIPE_CONFIG)
class DevEval:
    """Periodic Tatoeba dev evaluation: for monitoring only; Tatoeba is never trained on.

    ``max_lines`` keeps the first lines per language (``None``: all 1,000).
    """

    tatoeba_dir: DataPath
    langs: tuple[str, ...] = TATOEBA_DEV_LANGS
    max_lines: int | None = 200
    batch_size: int = 64

    def __post_init__(self) -> None:
        _check_langs(self.langs, "langs", 1)
        require(self.max_lines is None or self.max_lines >= 2, "max_lines", "must be at least 2")
        require(self.batch_size >= 1, "batch_size", "must be at least 1")


@dataclass(frozen=True, config=RECIPE_CONFIG)
class Recipe:
    """A whole training run. Relative paths resolve as ``base.py`` says.

    ``base`` is a transformers folder or ``"offline:e5-small"`` (converted into ``cache_dir``). ``prefix`` is
    prepended to every training and dev text (E5 wants ``"query: "``). ``batch_size`` is per process and
    micro-step; one optimizer step sees ``batch_size * grad_accum * world_size`` examples. ``eval_every`` and
    ``save_every`` count optimizer steps; 0 means never (a checkpoint is always saved at the last step).
    ``keep_checkpoints`` keeps that many newest checkpoints (0: all). ``device`` ``auto`` trains on CUDA when
    available (one GPU per torchrun process), else on CPU. ``train_top_layers`` N trains only the top N encoder
    layers (embeddings, lower layers and pooler frozen; ``freeze_embeddings`` is implied), so the trained model
    differs from its base by a small delta (``training.delta``); checked against the model's depth at build.

    Efficiency options (all off by default): ``cache_frozen_layers`` keeps the frozen layers' output on disk
    (``frozen_cache_dir``, default ``<cache_dir>/frozen-layers``; frozen layers then run without dropout);
    ``grad_cache_chunk`` N > 0 embeds each batch N texts at a time (gradient caching); ``gather_negatives``
    makes every process's batch a negative of every other's under DDP; ``hard_negatives`` mines negatives every
    epoch; ``group_batches`` forms batches of similar examples (see ``efficiency.py`` and ``training/trainer``).
    """

    base: ModelRef
    data: tuple[DataSource, ...]
    objectives: tuple[Objective, ...]
    steps: int
    output: RecipePath
    pooling: Pooling = "mean"
    prefix: str = "query: "
    max_seq_length: int = 128
    dictionaries: tuple[Dictionary, ...] = ()
    pairing: Pairing = "english_centric"
    pivot: str = "en"
    min_chars: int = 1
    max_chars: int = 1000
    deduplicate: bool = True
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 2e-5
    warmup_steps: int = 0
    decay: Decay = "linear"
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    freeze_embeddings: bool = False
    train_top_layers: int | None = None
    cache_frozen_layers: bool = False
    frozen_cache_dir: RecipePath | None = None
    grad_cache_chunk: int = 0
    gather_negatives: bool = False
    hard_negatives: HardNegatives | None = None
    group_batches: bool = False
    seed: int = 0
    eval_every: int = 0
    dev: DevEval | None = None
    save_every: int = 0
    keep_checkpoints: int = 2
    device: Device = "auto"
    cache_dir: RecipePath = field(default_factory=DEFAULT_CACHE.resolve)
    data_root: RecipePath = Path()

    def __post_init__(self) -> None:
        self._check_model()
        self._check_data()
        self._check_objectives()
        self._check_schedule()

    def _check_model(self) -> None:
        require(bool(self.base.strip()), "base", "must name a transformers folder or 'offline:e5-small'")
        require(
            not self.base.startswith("offline:") or self.base == OFFLINE_E5,
            "base",
            f"the offline base is {OFFLINE_E5!r}",
        )
        require(self.max_seq_length >= 8, "max_seq_length", "must be at least 8")

    def _check_data(self) -> None:
        require(len(self.data) > 0, "data", "needs at least one source")
        require(1 <= self.min_chars <= self.max_chars, "min_chars/max_chars", "need 1 <= min_chars <= max_chars")
        if self.pairing == "english_centric":
            has_pivot = any(self.pivot in source.languages for source in self.data)
            require(has_pivot, "pivot", f"english_centric pairing needs {self.pivot!r} in some data source")

    def _check_objectives(self) -> None:
        names = [objective.name for objective in self.objectives]
        require(len(names) > 0, "objectives", "needs at least one objective")
        require(len(set(names)) == len(names), "objectives", f"names an objective twice: {names}")
        if CONTRASTIVE & set(names):
            require(self.batch_size >= 2, "batch_size", "contrastive objectives need at least 2 examples per batch")
        has_align = "align_mlm" in names
        require(has_align == bool(self.dictionaries), "dictionaries", "are needed by align_mlm and used only by it")
        require(
            not (has_align and self.freeze_embeddings),
            "freeze_embeddings",
            "cannot be combined with align_mlm, whose dictionary loss trains the word embeddings",
        )
        require(self.train_top_layers is None or self.train_top_layers >= 1, "train_top_layers", "must be at least 1")
        masked = sorted({"align_mlm", "mlm"} & set(names))
        require(
            self.train_top_layers is None or not masked,
            "train_top_layers",
            f"cannot be combined with {', '.join(masked)}, which needs trainable word embeddings",
        )
        check_efficiency(
            names,
            top_layers=self.train_top_layers,
            cache=self.cache_frozen_layers,
            grad_cache_chunk=self.grad_cache_chunk,
            hard=self.hard_negatives,
        )

    def _check_schedule(self) -> None:
        require(self.seed >= 0, "seed", "must not be negative")
        for name in ("steps", "batch_size", "grad_accum"):
            require(getattr(self, name) >= 1, name, "must be at least 1")
        require(math.isfinite(self.lr) and self.lr > 0, "lr", f"must be positive, got {self.lr}")
        require(0 <= self.warmup_steps <= self.steps, "warmup_steps", f"must be in [0, steps={self.steps}]")
        require(self.weight_decay >= 0, "weight_decay", "must not be negative")
        require(self.max_grad_norm >= 0, "max_grad_norm", "must not be negative (0 turns clipping off)")
        for name in ("eval_every", "save_every", "keep_checkpoints"):
            require(getattr(self, name) >= 0, name, "must not be negative (0 means never / keep all)")
        require(self.eval_every == 0 or self.dev is not None, "eval_every", "needs a [dev] table")
