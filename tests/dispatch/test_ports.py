"""Port choice and per-port rate limits, with explicit times (nothing sleeps)."""

from __future__ import annotations

import pytest

from simgate.dispatch.ports import PortPicker, TokenBucket, parse_hint
from simgate.lines.base import PortInfo

T0 = 1_767_225_600_000


def port(i: int, *, registered: bool = True, locked: bool = False) -> PortInfo:
    return PortInfo(i, f"gsm-1.{i + 1}", "", "", "", 20, registered, locked=locked)


def test_bucket_starts_full_then_refills_continuously() -> None:
    b = TokenBucket(6, T0)  # one token every 10 s
    assert [b.take(T0) for _ in range(7)] == [True] * 6 + [False]
    assert b.wait_ms(T0) == 10_001
    assert not b.take(T0 + 9_999)
    assert b.take(T0 + 10_000)
    assert not b.take(T0 + 10_000)


def test_bucket_never_holds_more_than_capacity() -> None:
    b = TokenBucket(2, T0)
    assert b.take(T0 + 3_600_000)
    assert b.take(T0 + 3_600_000)
    assert not b.take(T0 + 3_600_000)


def test_bucket_ignores_time_going_backwards() -> None:
    b = TokenBucket(60, T0)
    for _ in range(60):
        assert b.take(T0)
    assert not b.take(T0 - 5_000)
    assert b.take(T0 + 1_000)


@pytest.mark.parametrize(
    ("hint", "expected"),
    [(None, None), ("", None), ("2,3", {2, 3}), (" 1 , x, 4", {1, 4}), ("0", {0})],
)
def test_parse_hint(hint: str | None, expected: set[int] | None) -> None:
    assert parse_hint(hint) == (None if expected is None else frozenset(expected))


def test_round_robin_over_usable_ports() -> None:
    picker = PortPicker(0)
    ports = [port(0), port(1, registered=False), port(2), port(3, locked=True)]
    assert [picker.pick(ports, None, T0) for _ in range(4)] == [0, 2, 0, 2]


def test_hint_restricts_ports() -> None:
    picker = PortPicker(0)
    ports = [port(i) for i in range(4)]
    assert {picker.pick(ports, frozenset({1, 3}), T0) for _ in range(6)} == {1, 3}
    assert picker.pick(ports, frozenset({7}), T0) is None
    assert picker.wait_ms(ports, frozenset({7}), T0) is None


def test_no_usable_port() -> None:
    picker = PortPicker(10)
    ports = [port(0, registered=False), port(1, locked=True)]
    assert picker.pick(ports, None, T0) is None
    assert picker.wait_ms(ports, None, T0) is None


def test_per_port_rate_limit_and_wait() -> None:
    picker = PortPicker(2)  # 2 per minute per port
    ports = [port(0), port(1)]
    got = [picker.pick(ports, None, T0) for _ in range(5)]
    assert sorted(p for p in got if p is not None) == [0, 0, 1, 1]
    assert got[-1] is None
    wait = picker.wait_ms(ports, None, T0)
    assert wait is not None
    assert 29_000 < wait <= 30_001
    assert picker.pick(ports, None, T0 + wait) is not None
    assert picker.pick(ports, None, T0 + wait) is not None  # the other port refilled too
    assert picker.pick(ports, None, T0 + wait) is None


def test_rate_limit_applies_per_port_not_per_line() -> None:
    picker = PortPicker(1)
    ports = [port(0), port(1)]
    assert picker.pick(ports, frozenset({0}), T0) == 0
    assert picker.pick(ports, frozenset({0}), T0) is None
    assert picker.pick(ports, frozenset({1}), T0) == 1
