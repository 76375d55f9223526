"""Collating rows into batches: pairs, multi-way tables, masking that spares the prefix, dictionary words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import transformers

from xalign.training.data.records import ParallelRow, WordPair
from xalign.training.trainer.batches import Collator, Needs, TextTokenizer, choose_pair, prefix_pieces
from xalign.training.trainer.order import Window

ROWS = [
    ParallelRow({"en": "a dog runs", "de": "ein hund rennt", "fr": "un chien court"}),
    ParallelRow({"en": "two cats", "de": "zwei katzen"}),
    ParallelRow({"en": "the sun is hot", "de": "die sonne ist heiss", "fr": "le soleil est chaud"}),
]
WINDOW = Window(epoch=0, indices=[0, 1, 2], positions=[0, 1, 2])


@pytest.fixture(scope="module")
def tokenizer(mlm_model_dir: Path) -> TextTokenizer:
    return TextTokenizer(transformers.AutoTokenizer.from_pretrained(str(mlm_model_dir)), "query: ", 32)


def _collator(tokenizer: TextTokenizer, needs: Needs, **kwargs: object) -> Collator:
    return Collator(tokenizer, needs, seed=7, mask_token_id=tokenizer.tokenizer.mask_token_id, vocab_size=120, **kwargs)


def test_english_centric_pair_translates_into_the_pivot() -> None:
    rng = np.random.default_rng(0)
    assert choose_pair(ParallelRow({"en": "x", "de": "y"}), rng, "en") == ("de", "en")
    src, tgt = choose_pair(ROWS[0], rng, "en")
    assert src != tgt and {src, tgt} <= set(ROWS[0].langs)


def test_prefix_tokens_are_counted(tokenizer: TextTokenizer) -> None:
    assert tokenizer.prefix_length == 6  # q ##u ##e ##r ##y :
    assert prefix_pieces(tokenizer.tokenizer, "") == 0
    tokens = tokenizer(["ab"])
    # [CLS] + 6 prefix pieces + a ##b + [SEP]: only the two text pieces are content.
    assert tokens.content[0].tolist() == [False] * 7 + [True, True, False]


def test_pairs_and_multiway_index_one_shared_text_table(tokenizer: TextTokenizer) -> None:
    batch = _collator(tokenizer, Needs(pairs=True, multiway=True))(ROWS, WINDOW)
    assert batch.texts is not None and batch.pairs is not None and batch.multiway is not None
    assert batch.languages == ("de", "en", "fr")
    assert batch.texts.ids.shape[0] == 8  # every distinct text once
    assert batch.multiway[1].tolist()[2] == -1  # row 1 has no French
    for row in range(3):  # a row's pair is two of its own texts
        assert set(batch.pairs[row].tolist()) <= set(batch.multiway[row].tolist()) - {-1}
    assert batch.pairs[1].tolist() == [batch.multiway[1, 0].item(), batch.multiway[1, 1].item()]  # (de, en)


def test_draws_depend_only_on_seed_epoch_and_position(tokenizer: TextTokenizer) -> None:
    collate = _collator(tokenizer, Needs(pairs=True, mask_prob=0.5))
    a, b = collate(ROWS, WINDOW), collate(ROWS, WINDOW)
    assert a.pairs is not None and b.pairs is not None and a.masked is not None and b.masked is not None
    assert a.pairs.tolist() == b.pairs.tolist() and a.masked.ids.tolist() == b.masked.ids.tolist()
    others = [collate(ROWS, Window(e, [0, 1, 2], [0, 1, 2])).masked for e in range(1, 4)]
    assert any(o is not None and o.labels.tolist() != a.masked.labels.tolist() for o in others)


def test_masking_never_touches_specials_or_the_prefix(tokenizer: TextTokenizer) -> None:
    batch = _collator(tokenizer, Needs(mask_prob=0.9))(ROWS, WINDOW)
    masked = batch.masked
    assert masked is not None
    chosen = masked.labels != -100
    assert chosen.any()
    assert not chosen[:, :7].any()  # [CLS] and the six prefix pieces
    assert (masked.ids == tokenizer.tokenizer.mask_token_id).any()
    assert (masked.labels[chosen] != tokenizer.tokenizer.mask_token_id).all()  # labels are the original ids


def test_dictionary_words_become_piece_ids(tokenizer: TextTokenizer) -> None:
    words = [WordPair("dog", "hund", "en", "de"), WordPair("cat", "katze", "en", "de")]
    batch = _collator(tokenizer, Needs(word_pairs=5), dictionary=words)(ROWS, WINDOW)
    assert batch.dictionary is not None
    src, tgt = batch.dictionary
    assert src.ids.shape[0] == tgt.ids.shape[0] == 5
    assert src.mask.sum(dim=1).tolist() == [3] * 5  # every English word has three characters


def test_mlm_without_a_mask_token_is_refused(tiny_model_dir: Path) -> None:
    plain = TextTokenizer(transformers.AutoTokenizer.from_pretrained(str(tiny_model_dir)), "", 32)
    with pytest.raises(ValueError, match="no mask token"):
        Collator(plain, Needs(mask_prob=0.15), seed=0, mask_token_id=None, vocab_size=120)
