"""Admission's bounds on their own: tokens, texts, the per-request maximum and the estimated wait."""

from __future__ import annotations

from typing import Any

import pytest

from xalign.service.engine.admission import Admission, Bounds
from xalign.service.errors import OverloadedError, PayloadTooLargeError
from xalign.service.settings import Settings


def _admission(**settings: Any) -> Admission:
    return Admission(Bounds.from_settings(Settings(**settings)), label="m")


def test_a_request_is_refused_whole_past_the_token_bound() -> None:
    admission = _admission(max_queue_tokens=100)
    admission.reserve(texts=2, tokens=60)
    with pytest.raises(OverloadedError):
        admission.reserve(texts=1, tokens=41)
    assert (admission.texts, admission.tokens) == (2, 60)  # nothing of the refused request was reserved
    admission.reserve(texts=1, tokens=40)


def test_over_the_per_request_maximum_is_413_even_on_an_empty_queue() -> None:
    admission = _admission(max_queue_tokens=1000, max_tokens_per_request=50)
    with pytest.raises(PayloadTooLargeError):
        admission.reserve(texts=1, tokens=51)


def test_the_backlog_in_seconds_bounds_admission_once_throughput_is_measured() -> None:
    admission = _admission(max_queue_tokens=1_000_000, max_queue_wait_s=2.0)
    admission.reserve(texts=10, tokens=5_000)  # unmeasured: only the token bound applies
    admission.throughput.observe(tokens=1_000, seconds=1.0)  # 1,000 tokens/s: 5 s of queued work
    with pytest.raises(OverloadedError) as refused:
        admission.reserve(texts=1, tokens=10)
    assert refused.value.retry_after == 5  # the queued work drains in about 5 s
    with pytest.raises(OverloadedError):
        admission.precheck(texts=1)  # refused before tokenising too
    admission.release(texts=10, tokens=4_000)  # 1 s left: a large newcomer is taken
    admission.reserve(texts=400, tokens=12_000)


def test_the_wait_bound_can_be_turned_off() -> None:
    admission = _admission(max_queue_tokens=1_000_000, max_queue_wait_s=0)
    admission.throughput.observe(tokens=10, seconds=1.0)
    admission.reserve(texts=1, tokens=5_000)
    admission.reserve(texts=1, tokens=5_000)
