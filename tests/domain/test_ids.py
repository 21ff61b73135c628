"""Message ids: 19 digits, yyMMddHHmmss (UTC) + 7-digit sequence (spec §7)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simgate.domain.ids import (
    EARLIEST_MS,
    LATEST_MS,
    MAX_ID,
    SEQ_MOD,
    IdAllocator,
    compose,
    in_range,
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


@given(st.integers(min_value=-(2**62), max_value=2**62), st.sampled_from([0, 1, 2]), seqs)
def test_bounds_fit_a_bigint_for_any_time(ms: int, which: int, seq: int) -> None:
    """A client's time in 2093 or 1999 (issue 14 item 9) still gives bounds a BIGINT holds,
    and they still bound every id that can be issued."""
    lo, hi = lower_bound(ms), upper_bound(ms)
    assert 0 <= lo <= MAX_ID
    assert 0 <= hi <= MAX_ID
    t = (EARLIEST_MS, LATEST_MS, min(max(ms, EARLIEST_MS), LATEST_MS))[which]
    issued = compose(t, seq)
    if t - t % 1000 >= ms:
        assert issued >= lo
    if t <= ms:
        assert issued <= hi


def test_bounds_outside_the_id_years() -> None:
    assert lower_bound(LATEST_MS + 1) == MAX_ID  # nothing is issued after 2092
    assert upper_bound(EARLIEST_MS - 1) == 0  # nor before 2000
    assert upper_bound(10**15) == upper_bound(LATEST_MS) < MAX_ID
    assert lower_bound(0) == lower_bound(EARLIEST_MS)
    assert in_range(LATEST_MS)
    assert not in_range(LATEST_MS + 1)
    assert not in_range(EARLIEST_MS - 1)
