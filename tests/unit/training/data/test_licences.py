"""Corpus licences by data-root-relative path, as manifests record them."""

from __future__ import annotations

from xalign.training.data.licences import DATA_LICENCES, data_licences


def test_one_line_per_corpus_in_first_seen_order() -> None:
    paths = ["xnli/dev-en.tsv", "ntrex128/a.txt", "xnli/test-de.tsv", "multi30k/train.en"]
    assert data_licences(paths) == (DATA_LICENCES["xnli"], DATA_LICENCES["ntrex128"], DATA_LICENCES["multi30k"])
    assert "non-commercial" in DATA_LICENCES["xnli"] and "non-commercial" in DATA_LICENCES["multi30k"]


def test_unknown_corpus_is_named_not_dropped() -> None:
    assert data_licences(["mine/parallel.tsv"]) == ("training data mine: licence not recorded",)
    assert data_licences([]) == ()
