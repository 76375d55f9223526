"""A Backpack training recipe: one TOML file per run, read into frozen dataclasses checked on construction.

A run is either a *language-model* run over monolingual ``[[texts]]`` (the English source model, the
target-only baselines) or a *SENSIA* run over ``[[parallel]]`` pairs with an ``[objective]`` table (SENSIA
and the joint baseline, which is SENSIA with both alignment weights 0). The phases of the experiment
(``benchmarks/backpack/run.py``) are separate recipes: phase 1 (``source_en.toml``) trains the tokenizer and
the English model; phase 2 recipes start from its checkpoint (``init``).

The model and tokenizer come from exactly one place:

* ``init``: a Backpack checkpoint folder (its config, weights and tokenizer); no ``[model]`` table;
* otherwise a fresh model of ``[model]`` sizes, with the tokenizer either trained here (``[tokenizer]``,
  from its own ``[[tokenizer.texts]]``) or read from ``tokenizer_from`` (a ``tokenizer.json``).

Loading is the dual-encoder recipes' (``training/recipes/base.py``): pydantic checks the types and refuses
unknown keys. Paths: ``output``, ``data_root``, ``init`` and ``tokenizer_from`` resolve against the recipe
file's folder; the ``path`` of every text and parallel source against ``data_root``. Nothing here imports
torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from xalign.training.objectives.sensia_weights import SensiaWeights
from xalign.training.recipes.base import (
    RECIPE_CONFIG,
    DataPath,
    Overrides,
    RecipePath,
    build_recipe,
    load_recipe_file,
    require,
)
from xalign.training.recipes.recipe import Decay

CorpusKind = Literal["multi30k", "ntrex", "wmt", "xnli", "lines"]
# The split each corpus kind needs: multi30k train|val, xnli dev|test, wmt the test set name; none else.
_NEEDS_SPLIT = {"multi30k", "xnli", "wmt"}
# A size of the model: at least 1.
Size = Annotated[int, Field(ge=1)]


@dataclass(frozen=True, config=RECIPE_CONFIG, kw_only=True)
class CorpusRows:
    """Rows ``[start, stop)`` (stop None = to the end) of a corpus: what text and parallel sources share.

    ``kind`` ``lines`` reads ``path`` as a plain UTF-8 file of one text a line; the others take the corpus
    folder (``multi30k`` train|val, ``ntrex``, ``wmt`` with the test set name as ``split``, ``xnli``
    dev|test: premises then hypotheses).
    """

    kind: CorpusKind
    path: DataPath
    split: str | None = None
    start: int = 0
    stop: int | None = None

    def __post_init__(self) -> None:
        needs = self.kind in _NEEDS_SPLIT
        require(bool(self.split) == needs, "split", f"a {self.kind} source {'needs' if needs else 'takes no'} split")
        require(self.start >= 0, "start", f"must be >= 0, got {self.start}")
        require(
            self.stop is None or self.stop > self.start,
            "stop",
            f"must be greater than start {self.start}, got {self.stop}",
        )


@dataclass(frozen=True, config=RECIPE_CONFIG, kw_only=True)
class TextSource(CorpusRows):
    """Monolingual text: one language ``lang`` of a corpus."""

    lang: str

    def __post_init__(self) -> None:
        require(bool(self.lang) and self.lang.strip() == self.lang, "lang", f"bad language code {self.lang!r}")
        super().__post_init__()


@dataclass(frozen=True, config=RECIPE_CONFIG, kw_only=True)
class ParallelSource(CorpusRows):
    """Sentence pairs from line-aligned files: ``src`` (English) and ``tgt`` (a corpus with both sides)."""

    kind: Literal["multi30k", "ntrex", "wmt"]
    src: str
    tgt: str

    def __post_init__(self) -> None:
        require(self.src != self.tgt and bool(self.src) and bool(self.tgt), "tgt", "src and tgt must differ")
        super().__post_init__()


@dataclass(frozen=True, config=RECIPE_CONFIG)
class TokenizerRecipe:
    """Byte-level BPE trained on ``texts`` (in order) with at most ``vocab_size`` ids."""

    vocab_size: int
    texts: tuple[TextSource, ...]
    min_frequency: int = 2

    def __post_init__(self) -> None:
        require(self.vocab_size >= 260, "vocab_size", f"must be >= 260 (4 specials + 256 bytes), got {self.vocab_size}")
        require(self.min_frequency >= 1, "min_frequency", f"must be >= 1, got {self.min_frequency}")
        require(bool(self.texts), "texts", "the tokenizer needs at least one text source")


@dataclass(frozen=True, config=RECIPE_CONFIG)
class ModelSizes:
    """Sizes of a fresh Backpack (``BackpackConfig`` without the vocabulary, which the tokenizer gives)."""

    n_embd: Size = 128
    n_senses: Size = 16
    n_layer: Size = 2
    n_head: Size = 4
    max_positions: Size = 48
    sense_hidden: Annotated[int, Field(ge=0)] = 0  # 0: 4 * n_embd
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1

    def __post_init__(self) -> None:
        require(self.n_embd % self.n_senses == 0, "n_senses", f"must divide n_embd {self.n_embd}")
        require(self.n_embd % self.n_head == 0, "n_head", f"must divide n_embd {self.n_embd}")


@dataclass(frozen=True, config=RECIPE_CONFIG)
class BackpackRecipe:
    """One Backpack training run (see the module docstring for the model/tokenizer/data rules).

    ``save_every`` N > 0 writes a mid-run checkpoint every N steps (``checkpoints.py``; the newest
    ``keep_checkpoints`` are kept, 0: all) from which ``xalign-train backpack --resume`` continues exactly.
    """

    name: str
    output: RecipePath
    steps: int
    batch_size: int
    lr: float
    data_root: RecipePath = Path()
    max_len: int = 48
    warmup_steps: int = 0
    decay: Decay = "cosine"
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 0
    log_every: int = 25
    save_every: int = 0
    keep_checkpoints: int = 1
    init: RecipePath | None = None
    tokenizer_from: RecipePath | None = None
    tokenizer: TokenizerRecipe | None = None
    model: ModelSizes | None = None
    texts: tuple[TextSource, ...] = ()
    parallel: tuple[ParallelSource, ...] = ()
    objective: SensiaWeights | None = None

    def __post_init__(self) -> None:
        require(bool(self.name.strip()), "name", "must not be empty")
        require(self.steps >= 1 and self.batch_size >= 2, "steps", "steps must be >= 1 and batch_size >= 2")
        require(0 < self.lr < 1, "lr", f"must be in (0, 1), got {self.lr}")
        require(self.max_len >= 4, "max_len", f"must be >= 4, got {self.max_len}")
        require(0 <= self.warmup_steps < self.steps, "warmup_steps", f"must be in [0, steps), got {self.warmup_steps}")
        require(self.weight_decay >= 0 and self.max_grad_norm > 0, "weight_decay", "must be >= 0 (grad norm > 0)")
        require(self.log_every >= 1, "log_every", "must be >= 1")
        require(self.save_every >= 0, "save_every", "must be >= 0 (0: no mid-run checkpoints)")
        require(self.keep_checkpoints >= 0, "keep_checkpoints", "must be >= 0 (0: keep all)")
        self._check_model_source()
        self._check_data()

    def _check_model_source(self) -> None:
        if self.init is not None:
            require(self.model is None, "model", "a run from init takes its sizes from the checkpoint")
            require(self.tokenizer is None and self.tokenizer_from is None, "tokenizer", "init brings the tokenizer")
            return
        require(self.model is not None, "model", "a fresh run (no init) needs a [model] table")
        one = (self.tokenizer is None) != (self.tokenizer_from is None)
        require(one, "tokenizer", "a fresh run needs exactly one of [tokenizer] and tokenizer_from")
        if self.model is not None:
            require(self.max_len <= self.model.max_positions, "max_len", "must not exceed model.max_positions")

    def _check_data(self) -> None:
        require(bool(self.texts) != bool(self.parallel), "texts", "give either [[texts]] or [[parallel]], not both")
        require(bool(self.parallel) == (self.objective is not None), "objective", "[[parallel]] needs [objective]")

    @property
    def is_sensia(self) -> bool:
        """True for a parallel (SENSIA / joint) run, False for a language-model run over texts."""
        return bool(self.parallel)


def load_backpack_recipe(path: Path, output: Path | None = None, steps: int | None = None) -> BackpackRecipe:
    """Parse and check the recipe at ``path``; ``RecipeError`` (a ``ValueError``) names a wrong key or value."""
    return load_recipe_file(BackpackRecipe, path, Overrides(output=output, steps=steps))


def recipe_from_mapping(
    raw: dict[str, Any], recipe_dir: Path, output: Path | None = None, steps: int | None = None
) -> BackpackRecipe:
    """Build a ``BackpackRecipe`` from parsed TOML; overrides replace ``output`` / ``steps``."""
    return build_recipe(BackpackRecipe, raw, recipe_dir, Overrides(output=output, steps=steps))
