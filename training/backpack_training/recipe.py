"""A Backpack training recipe: one TOML file per run, read into frozen dataclasses checked on construction.

A run is either a *language-model* run over monolingual ``[[texts]]`` (the English source model, the
target-only baselines) or a *SENSIA* run over ``[[parallel]]`` pairs with an ``[objective]`` table (SENSIA
and the joint baseline, which is SENSIA with both alignment weights 0). The phases of the issue are separate
recipes: phase 1 (``source_en.toml``) trains the tokenizer and the English model; phase 2 recipes start
from its checkpoint (``init``).

The model and tokenizer come from exactly one place:

* ``init``: a Backpack checkpoint folder (its config, weights and tokenizer); no ``[model]`` table;
* otherwise a fresh model of ``[model]`` sizes, with the tokenizer either trained here (``[tokenizer]``,
  from its own ``[[tokenizer.texts]]``) or read from ``tokenizer_from`` (a ``tokenizer.json``).

Paths: ``output``, ``data_root``, ``init`` and ``tokenizer_from`` resolve against the recipe file's folder;
the ``path`` of every text and parallel source against ``data_root`` (the loader of ``training.recipes``
does the same for the dual-encoder recipes, and its table builder is reused here). Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from xalign.training.recipes.loader import PathBases, build_dataclass, plain_data, resolve_path
from xalign.training.recipes.recipe import Decay, RecipeError

CorpusKind = Literal["multi30k", "ntrex", "wmt", "xnli", "lines"]
# The split each corpus kind needs: multi30k train|val, xnli dev|test, wmt the test set name; none else.
_NEEDS_SPLIT = {"multi30k", "xnli", "wmt"}


def _require(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise RecipeError(f"{name}: {message}")


def _check_rows(start: int, stop: int | None) -> None:
    _require(start >= 0, "start", f"must be >= 0, got {start}")
    _require(stop is None or stop > start, "stop", f"must be greater than start {start}, got {stop}")


@dataclass(frozen=True)
class TextSource:
    """Monolingual text: one language of a corpus, rows ``[start, stop)`` (stop None = to the end).

    ``kind`` ``lines`` reads ``path`` as a plain UTF-8 file of one text a line; the others take the corpus
    folder (``multi30k`` train|val, ``ntrex``, ``wmt`` with the test set name as ``split``, ``xnli``
    dev|test: premises then hypotheses).
    """

    kind: CorpusKind
    path: Path
    lang: str
    split: str | None = None
    start: int = 0
    stop: int | None = None

    def __post_init__(self) -> None:
        _require(self.kind in get_args(CorpusKind), "kind", f"must be one of {get_args(CorpusKind)}, not {self.kind!r}")
        _require(bool(self.lang) and self.lang.strip() == self.lang, "lang", f"bad language code {self.lang!r}")
        needs = self.kind in _NEEDS_SPLIT
        _require(bool(self.split) == needs, "split", f"a {self.kind} source {'needs' if needs else 'takes no'} split")
        _check_rows(self.start, self.stop)


@dataclass(frozen=True)
class ParallelSource:
    """Sentence pairs from line-aligned files: ``src`` (English) and ``tgt`` rows ``[start, stop)``."""

    kind: Literal["multi30k", "ntrex", "wmt"]
    path: Path
    src: str
    tgt: str
    split: str | None = None
    start: int = 0
    stop: int | None = None

    def __post_init__(self) -> None:
        _require(
            self.kind in ("multi30k", "ntrex", "wmt"), "kind", f"must be multi30k, ntrex or wmt, not {self.kind!r}"
        )
        _require(self.src != self.tgt and bool(self.src) and bool(self.tgt), "tgt", "src and tgt must differ")
        needs = self.kind in _NEEDS_SPLIT
        _require(bool(self.split) == needs, "split", f"a {self.kind} source {'needs' if needs else 'takes no'} split")
        _check_rows(self.start, self.stop)


@dataclass(frozen=True)
class TokenizerRecipe:
    """Byte-level BPE trained on ``texts`` (in order) with at most ``vocab_size`` ids."""

    vocab_size: int
    texts: tuple[TextSource, ...]
    min_frequency: int = 2

    def __post_init__(self) -> None:
        _require(
            self.vocab_size >= 260, "vocab_size", f"must be >= 260 (4 specials + 256 bytes), got {self.vocab_size}"
        )
        _require(self.min_frequency >= 1, "min_frequency", f"must be >= 1, got {self.min_frequency}")
        _require(bool(self.texts), "texts", "the tokenizer needs at least one text source")


@dataclass(frozen=True)
class ModelSizes:
    """Sizes of a fresh Backpack (``BackpackConfig`` without the vocabulary, which the tokenizer gives)."""

    n_embd: int = 128
    n_senses: int = 16
    n_layer: int = 2
    n_head: int = 4
    max_positions: int = 48
    sense_hidden: int = 0
    dropout: float = 0.1

    def __post_init__(self) -> None:
        sizes = (self.n_embd, self.n_senses, self.n_layer, self.n_head, self.max_positions)
        _require(min(sizes) >= 1, "n_embd", f"every size must be positive: {self}")
        _require(self.n_embd % self.n_senses == 0, "n_senses", f"must divide n_embd {self.n_embd}")
        _require(self.n_embd % self.n_head == 0, "n_head", f"must divide n_embd {self.n_embd}")
        _require(self.sense_hidden >= 0, "sense_hidden", "must be >= 0 (0 = 4 * n_embd)")
        _require(0.0 <= self.dropout < 1.0, "dropout", f"must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class Objective:
    """SENSIA weights (``training.objectives.sensia.SensiaWeights``); both alignment weights 0 = joint LM."""

    target_lm: float = 1.0
    source_lm: float = 1.0
    sense_align: float = 1.0
    context_align: float = 1.0
    temperature: float = 0.1

    def __post_init__(self) -> None:
        weights = (self.target_lm, self.source_lm, self.sense_align, self.context_align)
        _require(min(weights) >= 0 and sum(weights) > 0, "objective", f"weights must be >= 0, not all 0: {self}")
        _require(0 < self.temperature <= 10, "temperature", f"must be in (0, 10], got {self.temperature}")


@dataclass(frozen=True)
class BackpackRecipe:
    """One Backpack training run (see the module docstring for the model/tokenizer/data rules)."""

    name: str
    output: Path
    data_root: Path
    steps: int
    batch_size: int
    lr: float
    max_len: int = 48
    warmup_steps: int = 0
    decay: Decay = "cosine"
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 0
    log_every: int = 25
    init: Path | None = None
    tokenizer_from: Path | None = None
    tokenizer: TokenizerRecipe | None = None
    model: ModelSizes | None = None
    texts: tuple[TextSource, ...] = ()
    parallel: tuple[ParallelSource, ...] = ()
    objective: Objective | None = None

    def __post_init__(self) -> None:
        _require(bool(self.name.strip()), "name", "must not be empty")
        _require(self.steps >= 1 and self.batch_size >= 2, "steps", "steps must be >= 1 and batch_size >= 2")
        _require(0 < self.lr < 1, "lr", f"must be in (0, 1), got {self.lr}")
        _require(self.max_len >= 4, "max_len", f"must be >= 4, got {self.max_len}")
        _require(0 <= self.warmup_steps < self.steps, "warmup_steps", f"must be in [0, steps), got {self.warmup_steps}")
        _require(self.decay in get_args(Decay), "decay", f"must be one of {get_args(Decay)}, not {self.decay!r}")
        _require(self.weight_decay >= 0 and self.max_grad_norm > 0, "weight_decay", "must be >= 0 (grad norm > 0)")
        _require(self.log_every >= 1, "log_every", "must be >= 1")
        self._check_model_source()
        self._check_data()

    def _check_model_source(self) -> None:
        if self.init is not None:
            _require(self.model is None, "model", "a run from init takes its sizes from the checkpoint")
            _require(self.tokenizer is None and self.tokenizer_from is None, "tokenizer", "init brings the tokenizer")
            return
        _require(self.model is not None, "model", "a fresh run (no init) needs a [model] table")
        one = (self.tokenizer is None) != (self.tokenizer_from is None)
        _require(one, "tokenizer", "a fresh run needs exactly one of [tokenizer] and tokenizer_from")
        if self.model is not None:
            _require(self.max_len <= self.model.max_positions, "max_len", "must not exceed model.max_positions")

    def _check_data(self) -> None:
        _require(bool(self.texts) != bool(self.parallel), "texts", "give either [[texts]] or [[parallel]], not both")
        _require(bool(self.parallel) == (self.objective is not None), "objective", "[[parallel]] needs [objective]")

    @property
    def is_sensia(self) -> bool:
        """True for a parallel (SENSIA / joint) run, False for a language-model run over texts."""
        return bool(self.parallel)


def load_backpack_recipe(path: Path, output: Path | None = None, steps: int | None = None) -> BackpackRecipe:
    """Parse and check the recipe at ``path``; ``RecipeError`` (a ``ValueError``) names a wrong key or value."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML ({exc})") from exc
    try:
        return recipe_from_mapping(raw, path.resolve().parent, output=output, steps=steps)
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from exc


def recipe_from_mapping(
    raw: dict[str, Any], recipe_dir: Path, output: Path | None = None, steps: int | None = None
) -> BackpackRecipe:
    """Build a ``BackpackRecipe`` from parsed TOML; overrides replace ``output`` / ``steps``."""
    values = dict(raw)
    data_root = resolve_path(recipe_dir, str(values.get("data_root", ".")))
    values["data_root"] = str(data_root)
    if output is not None:
        values["output"] = str(Path(output).resolve())
    if steps is not None:
        values["steps"] = steps
    recipe: BackpackRecipe = build_dataclass(BackpackRecipe, values, "", PathBases(top=recipe_dir, nested=data_root))
    return recipe


def recipe_to_dict(recipe: BackpackRecipe) -> dict[str, Any]:
    """The recipe as JSON-ready data (paths as strings, tuples as lists) for the run manifest."""
    plain: dict[str, Any] = plain_data(dataclasses.asdict(recipe))
    return plain
