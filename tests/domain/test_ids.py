"""Message ids: 19 digits, yyMMddHHmmss (UTC) + 7-digit sequence (spec §7)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simgate.domain.ids import (
    SEQ_MOD,
    IdAllocator,
    compose,
    issued_at_ms,
    lower_bound,
    upper_bound,
)

# Ids are 19 digits from 2010 (yy >= 10) until they would pass 2**63 in 2092.
FIRST_MS = int(datetime(2010, 1, 1, tzinfo=UTC).timestamp() * 1000)
LAST_MS = int(datetime(2092, 1, 1, tzinfo=UTC).timestamp() * 1000) - 1
times = st.integers(min_value=FIRST_MS, max_value=LAST_MS)
seqs = st.integers(min_value=0, max_value=SEQ_MOD - 1)


def test_layout_example() -> None:
    ms = int(datetime(2026, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC).timestamp() * 1000)
    assert compose(ms, 42) == 2603040506070000042
    assert str(compose(ms, 42)) == "260304050607" + "0000042"


def test_timestamp_part_is_utc_not_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        ms = int(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp() * 1000)
        assert str(compose(ms, 1)).startswith("261231235959")
        assert issued_at_ms(compose(ms, 1)) == ms
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@given(times, seqs)
def test_compose_is_19_digits_below_bigint(ms: int, seq: int) -> None:
    mid = compose(ms, seq)
    assert len(str(mid)) == 19
    assert mid < 2**63
    assert mid % SEQ_MOD == seq


@given(times, seqs)
def test_issued_at_is_the_second_of_issue(ms: int, seq: int) -> None:
    assert issued_at_ms(compose(ms, seq)) == ms - ms % 1000


@given(times, seqs)
def test_bounds_contain_every_id_of_that_second(ms: int, seq: int) -> None:
    mid = compose(ms, seq)
    assert lower_bound(ms) <= mid <= upper_bound(ms)


@given(times, times, seqs, seqs)
def test_ids_sort_by_second(a: int, b: int, sa: int, sb: int) -> None:
    if a // 1000 < b // 1000:
        assert compose(a, sa) < compose(b, sb)
        assert upper_bound(a) < lower_bound(b)


@given(times, st.integers(min_value=1, max_value=10**6))
def test_time_window_query_bounds(start: int, width: int) -> None:
    """[lower_bound(t0), upper_bound(t1)] holds exactly the ids of seconds t0..t1."""
    end = start + width
    inside = compose(start + width // 2, 7)
    before = compose(start - 1000, SEQ_MOD - 1)
    after = compose(end + 1000, 0)
    assert lower_bound(start) <= inside <= upper_bound(end)
    assert before < lower_bound(start)
    assert after > upper_bound(end)


def test_allocator_counts_up_and_runs_out() -> None:
    alloc = IdAllocator()
    with pytest.raises(LookupError):
        alloc.take(FIRST_MS)
    alloc.refill(100, 3)
    assert alloc.remaining() == 3
    got = [alloc.take(FIRST_MS) for _ in range(3)]
    assert [g % SEQ_MOD for g in got] == [100, 101, 102]
    assert alloc.remaining() == 0
    with pytest.raises(LookupError):
        alloc.take(FIRST_MS)


@given(
    st.integers(min_value=1, max_value=300),
    st.lists(times, min_size=1, max_size=5),
)
def test_two_allocators_with_disjoint_blocks_never_collide(size: int, stamps: list[int]) -> None:
    a, b = IdAllocator(), IdAllocator()
    a.refill(0, size)
    b.refill(size, size)
    out: list[int] = []
    for i in range(size):
        ms = stamps[i % len(stamps)]
        out.append(a.take(ms))
        out.append(b.take(ms))
    assert len(set(out)) == len(out) == 2 * size
