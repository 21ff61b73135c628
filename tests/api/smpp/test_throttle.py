"""The per-account token bucket: a burst up to the rate passes, the excess is refused."""

from __future__ import annotations

import pytest

from simgate.api.smpp.throttle import TokenBucket


def test_a_burst_up_to_the_rate_passes_and_the_excess_is_refused() -> None:
    bucket = TokenBucket(rate=10, now=0.0)
    taken = [bucket.take(0.0) for _ in range(50)]
    assert taken.count(True) == 10
    assert taken[:10] == [True] * 10


def test_time_refills_at_the_rate_up_to_one_second_of_tokens() -> None:
    bucket = TokenBucket(rate=10, now=0.0)
    for _ in range(10):
        assert bucket.take(0.0)
    assert not bucket.take(0.05)  # half a token
    assert bucket.take(0.1)
    later = [bucket.take(100.0) for _ in range(20)]
    assert later.count(True) == 10  # never more than the capacity


def test_a_clock_going_back_does_not_mint_tokens() -> None:
    bucket = TokenBucket(rate=1, now=10.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)
    assert not bucket.take(10.5)


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0, now=0.0)
