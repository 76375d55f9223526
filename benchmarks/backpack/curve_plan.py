"""The runs of the Backpack SENSIA data curve and their recipes, generated from one template per run kind.

The claim under test: a Backpack adapted with SENSIA on N English-X pairs is as good an X language model as
a target-only Backpack trained from scratch on 2-4x as many X sentences. Runs, in the order the runner
(``curve.py run``) walks them, so that partial results are already a curve:

1. ``source_en``: the tokenizer and the English model, on all the English of ``../shared/data`` that no
   Backpack measurement uses (Multi30k train, NTREX-128, WMT newstest, XNLI dev+test; Multi30k val is the
   evaluation set, Tatoeba / BUCC / MUSE are evaluation data too);
2. per seed (0, then 1, then 2), per language X in de, fr, cs: ``target_X_<rows>_s<seed>`` from scratch on
   the first N, 2N, 4N Multi30k train X sentences (nested prefixes), ``sensia_X_<N>_s<seed>`` from the
   source model on the first N en-X pairs, and the control ``init_lm_X_<N>_s<seed>``: the same init, pairs,
   order and learning rate as SENSIA with every term but the target LM switched off, so that SENSIA against
   it measures what the source LM and the two alignment losses cost or buy, and it against target-only N
   what the English init does. Every phase-2 run takes ``PHASE2_STEPS`` optimizer steps of ``BATCH`` rows,
   so data, not compute, varies;
3. the size probe: ``source_en_d256`` and ``sensia_de_<N>_s0_d256``, the same recipes at a larger width,
   to see whether a larger Backpack reads better senses (the served Backpack must stay <= 30 MB).

Recipes are TOML text (the ``xalign-train backpack`` format, ``training/backpack_training/recipe.py``)
written to ``runs/backpack_curve/recipes/``; paths there are relative to that folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

LANGS = ("de", "fr", "cs")
SEEDS = (0, 1, 2)
N = 7000
MULTIPLES = (1, 2, 4)
BATCH = 32
MAX_LEN = 32
SOURCE_STEPS = 3000
PHASE2_STEPS = 1750  # 8 epochs of N, 2 of 4N: the small sets are exhausted, the large one is not
SAVE_EVERY = 250
LOG_EVERY = 50
DEFAULT_SIZE = "d128"
PROBE_SIZE = "d256"
# Model widths: d128 is the shipped Backpack's (7.4 MB float32), d256 about 21 MB.
SIZES = {"d128": 128, "d256": 256}
# CPU seconds per optimizer step (1 torch thread, nice 19, 2 shared cores, batch 32 x 32 tokens), measured
# with 20-step probes before the run started: language-model steps and SENSIA steps (two forward passes).
PROBE_S_PER_STEP = {("d128", "lm"): 0.30, ("d128", "sensia"): 0.58, ("d256", "lm"): 0.54, ("d256", "sensia"): 1.14}

Kind = Literal["source", "target", "sensia", "init_lm"]
# The English text sources (key -> value of a ``[[texts]]`` entry); Multi30k val is never among them.
ENGLISH: tuple[dict[str, str], ...] = (
    {"kind": "multi30k", "path": "multi30k", "split": "train", "lang": "en"},
    {"kind": "ntrex", "path": "ntrex128", "lang": "en"},
    *({"kind": "wmt", "path": "wmt_newstest", "split": split, "lang": "en"}
      for split in ("newstest2009", "newssyscomb2009", "newstest2012", "newstest2013")),
    {"kind": "xnli", "path": "xnli", "split": "dev", "lang": "en"},
    {"kind": "xnli", "path": "xnli", "split": "test", "lang": "en"},
)  # fmt: skip
DATA_ROOT = "../../../../shared/data"  # from runs/backpack_curve/recipes/ to /work/shared/data


@dataclass(frozen=True)
class CurveRun:
    """One run of the curve: its kind, target language (``en`` for a source), seed, target rows and size."""

    kind: Kind
    lang: str
    seed: int
    rows: int
    size: str = DEFAULT_SIZE

    @property
    def name(self) -> str:
        """The run's folder and recipe name, e.g. ``target_de_14000_s1`` or ``source_en_d256``."""
        suffix = "" if self.size == DEFAULT_SIZE else f"_{self.size}"
        if self.kind == "source":
            return f"source_en{suffix}"
        return f"{self.kind}_{self.lang}_{self.rows}_s{self.seed}{suffix}"

    @property
    def source(self) -> str:
        """The name of the source run this run depends on (its tokenizer, and SENSIA's init)."""
        return CurveRun("source", "en", 0, 0, self.size).name

    @property
    def steps(self) -> int:
        """Optimizer steps: ``SOURCE_STEPS`` for a source, ``PHASE2_STEPS`` for every phase-2 run."""
        return SOURCE_STEPS if self.kind == "source" else PHASE2_STEPS

    @property
    def step_kind(self) -> str:
        """``sensia`` (two forward passes a step) or ``lm`` (one: init_lm runs no English pass)."""
        return "sensia" if self.kind == "sensia" else "lm"


def plan(seeds: Sequence[int] = SEEDS, langs: Sequence[str] = LANGS, probe: bool = True) -> list[CurveRun]:
    """Every run in the order the runner trains them (see the module docstring)."""
    runs = [CurveRun("source", "en", 0, 0)]
    for seed in seeds:
        for lang in langs:
            runs += [CurveRun("target", lang, seed, N * m) for m in MULTIPLES]
            runs += [CurveRun("sensia", lang, seed, N), CurveRun("init_lm", lang, seed, N)]
    if probe:
        runs += [CurveRun("source", "en", 0, 0, PROBE_SIZE), CurveRun("sensia", "de", 0, N, PROBE_SIZE)]
    return runs


def estimated_seconds(run: CurveRun) -> float:
    """CPU seconds the run's steps should take at the probed cost per step."""
    return run.steps * PROBE_S_PER_STEP[(run.size, run.step_kind)]


def _model_table(size: str) -> list[str]:
    d = SIZES[size]
    return ["[model]", f"n_embd = {d}", "n_senses = 16", "n_layer = 2", "n_head = 4", f"max_positions = {MAX_LEN}",
            "dropout = 0.1"]  # fmt: skip


def _common(run: CurveRun, lr: float, warmup: int) -> list[str]:
    return [
        f'name = "{run.name}"',
        f'output = "../{run.name}"',
        f'data_root = "{DATA_ROOT}"',
        f"steps = {run.steps}",
        f"batch_size = {BATCH}",
        f"max_len = {MAX_LEN}",
        f"lr = {lr}",
        f"warmup_steps = {warmup}",
        'decay = "cosine"',
        f"seed = {run.seed}",
        f"log_every = {LOG_EVERY}",
        f"save_every = {SAVE_EVERY}",
        "keep_checkpoints = 1",
    ]


def _value(value: str | int) -> str:
    return str(value) if isinstance(value, int) else f'"{value}"'


def _inline(entry: Mapping[str, str | int]) -> str:
    return "{ " + ", ".join(f"{key} = {_value(value)}" for key, value in entry.items()) + " }"


def _texts_table(entry: Mapping[str, str | int]) -> list[str]:
    return ["", "[[texts]]", *(f"{key} = {_value(value)}" for key, value in entry.items())]


def _source_body(run: CurveRun) -> list[str]:
    if run.size != DEFAULT_SIZE:  # the probe shares the default source's tokenizer: perplexities compare
        tokenizer = [f'tokenizer_from = "../{CurveRun("source", "en", 0, 0).name}/final/tokenizer.json"']
    else:  # the tokenizer also sees every target sentence a phase-2 run may train on (rows [0, 4N))
        targets = [_multi30k_text(x, N * max(MULTIPLES)) for x in LANGS]
        texts = ",\n  ".join(_inline(entry) for entry in (*ENGLISH, *targets))
        tokenizer = ["", "[tokenizer]", "vocab_size = 8000", "min_frequency = 2", f"texts = [\n  {texts},\n]"]
    return [*tokenizer, "", *_model_table(run.size), *(line for entry in ENGLISH for line in _texts_table(entry))]


def _multi30k_text(lang: str, stop: int) -> Mapping[str, str | int]:
    return {"kind": "multi30k", "path": "multi30k", "split": "train", "lang": lang, "stop": stop}


def _target_body(run: CurveRun) -> list[str]:
    texts = _multi30k_text(run.lang, run.rows)
    return [f'tokenizer_from = "../{run.source}/final/tokenizer.json"', "", *_model_table(run.size),
            *_texts_table(texts)]  # fmt: skip


# SENSIA's four loss weights; the control keeps only the target LM (``training/objectives/sensia_weights.py``).
SENSIA_WEIGHTS = "target_lm = 1.0\nsource_lm = 1.0\nsense_align = 1.0\ncontext_align = 1.0"
INIT_LM_WEIGHTS = "target_lm = 1.0\nsource_lm = 0.0\nsense_align = 0.0\ncontext_align = 0.0"


def _sensia_body(run: CurveRun) -> list[str]:
    weights = INIT_LM_WEIGHTS if run.kind == "init_lm" else SENSIA_WEIGHTS
    return [
        f'init = "../{run.source}/final"',
        "",
        "[[parallel]]",
        'kind = "multi30k"\npath = "multi30k"\nsplit = "train"',
        f'src = "en"\ntgt = "{run.lang}"\nstop = {run.rows}',
        "",
        "[objective]",
        f"{weights}\ntemperature = 0.1",
    ]


def recipe_text(run: CurveRun) -> str:
    """The TOML recipe of ``run`` (generated; ``curve.py recipes`` writes them all)."""
    warmup = max(run.steps // 20, 1)
    header = f"# Backpack SENSIA data curve (benchmarks/backpack/curve_plan.py), generated: {run.kind} run {run.name}."
    if run.kind == "source":
        lines = [*_common(run, 2e-3, warmup), *_source_body(run)]
    elif run.kind == "target":
        lines = [*_common(run, 2e-3, warmup), *_target_body(run)]
    else:  # sensia and its control share one learning rate, so the losses alone differ
        lines = [*_common(run, 1e-3, warmup), *_sensia_body(run)]
    return "\n".join([header, *lines, ""])
