"""Voice line pacing (dispatch/pacing.py): room per line, dial slots per second, redials."""

from __future__ import annotations

from simgate.dispatch.pacing import Pacer, Slot
from simgate.testing.clock import FakeClock
from simgate.testing.voice_lines import ScriptedVoiceLine

T0 = 1_000_000


def lines() -> dict[str, ScriptedVoiceLine]:
    clock = FakeClock()
    return {
        "a": ScriptedVoiceLine("a", clock=clock, calls_per_second=2, max_concurrent=2),
        "b": ScriptedVoiceLine("b", clock=clock, calls_per_second=4, max_concurrent=1),
    }


def test_slots_follow_calls_per_second_and_stop_at_max_concurrent() -> None:
    pacer = Pacer(lines())
    assert pacer.free() == 3
    assert pacer.take(previous=None, now_ms=T0) == Slot("a", T0)
    assert pacer.take(previous=None, now_ms=T0) == Slot("a", T0 + 500)  # 2 per second
    assert pacer.take(previous=None, now_ms=T0) == Slot("b", T0)
    assert pacer.free() == 0
    assert pacer.take(previous=None, now_ms=T0) is None
    pacer.release("a")
    assert pacer.free() == 1
    assert pacer.take(previous=None, now_ms=T0 + 100) == Slot("a", T0 + 1000)
    assert pacer.line("b").name == "b"


def test_a_redial_prefers_another_line_but_takes_the_same_one_if_alone() -> None:
    pacer = Pacer(lines())
    assert pacer.take(previous="a", now_ms=T0) == Slot("b", T0)
    assert pacer.take(previous="b", now_ms=T0) == Slot("a", T0)
    assert pacer.take(previous="a", now_ms=T0) == Slot("a", T0 + 500)  # b is full


def test_among_limits_the_lines_to_a_route() -> None:
    pacer = Pacer(lines())
    assert pacer.take(previous=None, now_ms=T0, among=("b",)) == Slot("b", T0)
    assert pacer.take(previous=None, now_ms=T0, among=("b",)) is None  # b is full, a not asked
    assert pacer.take(previous=None, now_ms=T0, among=("a", "b")) == Slot("a", T0)
