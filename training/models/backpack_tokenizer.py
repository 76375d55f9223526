"""The Backpack LM's tokenizer: byte-level BPE trained with ``tokenizers`` on the training text.

Byte-level means every string encodes without unknown words (``<unk>`` exists only as a named special).
Special ids are fixed: ``<pad>`` 0, ``<unk>`` 1, ``<s>`` 2, ``</s>`` 3. Encoding prepends ``<s>`` and appends
nothing: the last position of an encoded text is its last word, so the LM's prediction there is the next
word (the training data code appends ``</s>`` itself where a text should end). A space is put before the first
word, so a word is one token whether or not it starts the text ("man" in "man" and "a man" is "Ġman");
decoding therefore returns the text with one leading space (unless it already started with whitespace).
Training is deterministic: the same texts in the same order give a byte-identical ``tokenizer.json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, EOS)  # ids 0, 1, 2, 3 in this order


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """Train byte-level BPE of at most ``vocab_size`` ids (specials and the 256 bytes included) on ``texts``."""
    minimum = len(SPECIAL_TOKENS) + len(pre_tokenizers.ByteLevel.alphabet())
    if vocab_size < minimum:
        raise ValueError(f"vocab_size must be at least {minimum} (specials + 256 bytes), got {vocab_size}")
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    bos = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, bos)])
    _check_specials(tokenizer)
    return tokenizer


def _check_specials(tokenizer: Tokenizer) -> None:
    """Raise unless the specials hold ids 0..3 in ``SPECIAL_TOKENS`` order."""
    found = [tokenizer.token_to_id(token) for token in SPECIAL_TOKENS]
    if found != list(range(len(SPECIAL_TOKENS))):
        raise ValueError(f"special tokens {SPECIAL_TOKENS} have ids {found}, expected 0..3")


def save_tokenizer(tokenizer: Tokenizer, path: Path) -> Path:
    """Write ``tokenizer.json``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return path


def load_tokenizer(path: Path) -> Tokenizer:
    """Read a ``tokenizer.json`` written by ``save_tokenizer`` and check its special ids."""
    tokenizer = Tokenizer.from_file(str(path))
    _check_specials(tokenizer)
    return tokenizer
