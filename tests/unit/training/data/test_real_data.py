"""The readers on the full shipped data (skipped where ../shared/data is absent)."""

from __future__ import annotations

import pytest
from data_paths import SHARED_DATA

from xalign.training.data.aligned import load_aligned
from xalign.training.data.corpus import sha256_of
from xalign.training.data.errors import DataError
from xalign.training.data.muse import read_muse
from xalign.training.data.processing import english_centric
from xalign.training.data.shipped import multi30k
from xalign.training.data.xnli import XNLI_LANGS, load_xnli

pytestmark = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} not present")

# From ../shared/data/MANIFEST.md.
MULTI30K_TRAIN_EN_SHA256 = "460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6"


def test_full_multi30k_train_is_29000_four_way_rows() -> None:
    files = multi30k(SHARED_DATA / "multi30k", "train")
    assert sha256_of(files["en"]) == MULTI30K_TRAIN_EN_SHA256
    result = load_aligned(files)
    assert (result.lines, result.dropped, len(result.rows)) == (29000, 0, 29000)
    assert all(row.langs == ("cs", "de", "en", "fr") for row in result.rows)
    assert result.rows[-1].texts["en"].startswith("A man in shorts and a Hawaiian shirt leans over the rail")
    assert len(english_centric(result.rows)) == 3 * 29000


def test_full_xnli_dev_is_row_aligned_across_all_15_languages() -> None:
    rows = load_xnli(SHARED_DATA / "xnli", "dev", XNLI_LANGS)
    assert len(rows.premises) == 830
    assert len(rows.hypotheses) == 2490
    assert all(len(row.langs) == 15 for row in rows.premises + rows.hypotheses)


def test_zero_filled_muse_de_en_is_refused_if_still_broken() -> None:
    path = SHARED_DATA / "muse" / "de-en.0-5000.txt"
    if path.read_bytes()[:64].strip(b"\0"):
        pytest.skip(f"{path} has been repaired")
    with pytest.raises(DataError, match="all 180676 bytes are NUL"):
        read_muse(path, "de", "en")


def test_full_xnli_test_matches_the_swapped_russian_hypotheses_by_label() -> None:
    rows = load_xnli(SHARED_DATA / "xnli", "test", ["en", "ru"])
    assert (len(rows.premises), len(rows.hypotheses)) == (1670, 5010)
    perks = next(row for row in rows.hypotheses if row.texts["en"] == "Federal employees do get other perks though.")
    assert perks.texts["ru"] == "Однако федеральные служащие получают другие льготы."
