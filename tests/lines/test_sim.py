"""The simulated line: deterministic under a seed, reports after a delay, journal replay."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError

from simgate.codecs.segments import Encoding
from simgate.domain.queue import ReportHint
from simgate.errors import StoreError
from simgate.lines.base import LineReport, Outcome, SubmitRequest, SubmitResult
from simgate.lines.sim import DELIVERED, UNDELIVERABLE, SimLine, _reports
from simgate.settings import SimLineSettings
from simgate.testing.clock import FakeClock
from simgate.testing.lines import RecordingSink

BASE_ID = 2601010000000000000


def req(mid: int, *, port: int = 0, parts: int = 1, report: bool = True) -> SubmitRequest:
    return SubmitRequest(mid, port, "", "8613800138000", "hi", Encoding.GSM7, parts, report)


async def started(clock: FakeClock, **cfg: object) -> tuple[SimLine, RecordingSink]:
    line = SimLine("sim", SimLineSettings.model_validate(cfg), clock)
    sink = RecordingSink()
    await line.start(sink)
    return line, sink


async def drain(clock: FakeClock, seconds: float = 0) -> None:
    await clock.advance(seconds)
    for _ in range(20):
        await asyncio.sleep(0)


async def outcomes(seed: int, order: list[int]) -> dict[int, tuple[Outcome, int | None]]:
    """Submit ``order`` and collect (submit outcome, report code) per message id."""
    clock = FakeClock()
    line, sink = await started(clock, seed=seed, failure_ratio=0.3, delivery_ratio=0.6, ports=4)
    try:
        results: dict[int, SubmitResult] = {}
        for i, mid in enumerate(order):
            results[mid] = await line.submit(req(mid, port=i % 4))
        await drain(clock)
    finally:
        await line.stop()
    codes = {int(r.line_ref.split(".")[0]): r.status_code for _, r in sink.reports}
    return {mid: (res.outcome, codes.get(mid)) for mid, res in results.items()}


async def test_outcomes_are_a_function_of_seed_and_id_not_order() -> None:
    ids = [BASE_ID + i for i in range(200)]
    shuffled = ids[:]
    random.Random(5).shuffle(shuffled)
    first = await outcomes(1, ids)
    second = await outcomes(1, shuffled)
    assert first == second
    kinds = {v for v in first.values()}
    # All three endings occur with these ratios: rejected, delivered, undeliverable.
    assert kinds == {
        (Outcome.REJECTED, None),
        (Outcome.OK, DELIVERED),
        (Outcome.OK, UNDELIVERABLE),
    }
    rejected = sum(1 for o, _ in first.values() if o is Outcome.REJECTED)
    assert 30 <= rejected <= 90  # about 30 % of 200
    other_seed = await outcomes(2, ids)
    assert other_seed != first


async def test_reports_come_after_the_delay_with_refs_per_part() -> None:
    clock = FakeClock()
    line, sink = await started(clock, report_delay_ms=3000)
    try:
        res = await line.submit(req(BASE_ID, parts=3))
        assert res.outcome is Outcome.OK
        assert res.part_refs == (f"{BASE_ID}.0", f"{BASE_ID}.1", f"{BASE_ID}.2")
        assert line.pending_reports == 3
        await drain(clock, 2.999)
        assert sink.reports == []
        await drain(clock, 0.001)
        assert [r.line_ref for _, r in sink.reports] == list(res.part_refs)
        assert all(r.done_ms == clock.now_ms() and r.status_code == 0 for _, r in sink.reports)
        assert line.pending_reports == 0
    finally:
        await line.stop()


def test_reports_are_the_named_tuples_their_constructors_build() -> None:
    """``_reports`` builds them field by field past the constructors (issue 15): equal to,
    and typed as, what the constructors build, defaults included (covers = 1)."""
    refs = (f"{BASE_ID}.0", f"{BASE_ID}.1")
    built = _reports(BASE_ID, refs, UNDELIVERABLE, lease_seq=4, port=2, done_ms=1234)
    assert built == [
        LineReport(ref, UNDELIVERABLE, 1234, ReportHint(BASE_ID, 4, i + 1, 2, 2))
        for i, ref in enumerate(refs)
    ]
    for report in built:
        assert type(report) is LineReport
        assert type(report.hint) is ReportHint
        assert report.hint.covers == 1
        assert report._asdict()["hint"] == report.hint


async def test_no_report_when_none_requested() -> None:
    clock = FakeClock()
    line, sink = await started(clock)
    try:
        res = await line.submit(req(BASE_ID, report=False))
        assert res.outcome is Outcome.OK
        await drain(clock, 10)
        assert sink.reports == []
        assert line.submitted == 1
    finally:
        await line.stop()


async def test_tp_mr_counts_per_port_and_wraps() -> None:
    clock = FakeClock()
    line, _ = await started(clock, ports=2)
    try:
        firsts = [(await line.submit(req(BASE_ID + i, parts=100))).first_ref for i in range(3)]
        other = (await line.submit(req(BASE_ID + 9, port=1))).first_ref
    finally:
        await line.stop()
    assert firsts == [0, 100, 200]
    assert other == 0
    line2, _ = await started(FakeClock(), ports=1)
    try:
        for i in range(3):
            await line2.submit(req(BASE_ID + i, parts=100))
        assert (await line2.submit(req(BASE_ID + 5))).first_ref == 300 % 256
    finally:
        await line2.stop()


async def test_ports_and_unusable_ports() -> None:
    clock = FakeClock()
    line, _ = await started(clock, ports=3, seed=9)
    try:
        ports = line.ports()
        assert [p.index for p in ports] == [0, 1, 2]
        assert [p.name for p in ports] == ["gsm-1.1", "gsm-1.2", "gsm-1.3"]
        assert len({p.imsi for p in ports}) == 3
        assert all(len(p.imsi) == 15 and p.imsi.isdigit() for p in ports)
        assert all(p.usable for p in ports)
        line.set_port(1, registered=False)
        line.set_port(2, locked=True)
        assert [p.usable for p in line.ports()] == [True, False, False]
        for port in (1, 2):
            res = await line.submit(req(BASE_ID, port=port))
            assert res.outcome is Outcome.RETRY
        assert line.submitted == 0
        line.set_port(2, locked=False)
        assert (await line.submit(req(BASE_ID, port=2))).outcome is Outcome.OK
    finally:
        await line.stop()
    again = SimLine("sim", SimLineSettings(ports=3, seed=9), clock)
    assert [p.imsi for p in again.ports()] == [p.imsi for p in ports]  # stable under a seed


async def test_submit_latency_uses_the_clock() -> None:
    clock = FakeClock()
    line, _ = await started(clock, submit_latency_ms=500)
    try:
        task = asyncio.create_task(line.submit(req(BASE_ID)))
        await drain(clock)  # let it start sleeping
        await drain(clock, 0.4)
        assert not task.done()
        await drain(clock, 0.1)
        assert task.done()
        assert task.result().outcome is Outcome.OK
    finally:
        await line.stop()


async def test_inject_incoming() -> None:
    clock = FakeClock()
    line, sink = await started(clock, ports=2)
    try:
        await line.inject_incoming(port=1, sender="8613800138000", text="hello 你好")
    finally:
        await line.stop()
    ((name, sms),) = sink.incoming_sms
    assert name == "sim"
    assert (sms.port, sms.sender, sms.text) == (1, "8613800138000", "hello 你好")
    assert sms.recipient == line.ports()[1].number
    assert sms.received_ms == clock.now_ms()


async def test_journal_replay_redelivers_unacknowledged_reports(tmp_path: Path) -> None:
    journal = tmp_path / "sim.journal"
    clock = FakeClock()
    line, sink = await started(clock, journal=str(journal), report_delay_ms=60_000)
    a, b, c, d = (BASE_ID + i for i in range(4))
    await line.submit(req(a, parts=2))
    await line.submit(req(b))
    await line.submit(req(d, report=False))
    await drain(clock, 60)  # a and b are reported and acknowledged
    assert sorted(r.line_ref for _, r in sink.reports) == [f"{a}.0", f"{a}.1", f"{b}.0"]
    await line.submit(req(c, parts=2))  # its reports are still pending at the "crash"
    await line.stop()

    text = journal.read_text()
    assert f"S {a} 2 0" in text
    assert f"S {d} 1 -" in text
    assert f"A {a}.0" in text
    assert f"A {c}.0" not in text

    clock2 = FakeClock(clock.now_ms() + 5_000)
    again, sink2 = await started(clock2, journal=str(journal), report_delay_ms=60_000)
    try:
        await drain(clock2)
        assert sorted(r.line_ref for _, r in sink2.reports) == [f"{c}.0", f"{c}.1"]
        assert all(r.status_code == DELIVERED for _, r in sink2.reports)
    finally:
        await again.stop()
    # Once acknowledged, a third start has nothing to redeliver.
    third, sink3 = await started(FakeClock(), journal=str(journal))
    try:
        await drain(FakeClock())
        assert sink3.reports == []
    finally:
        await third.stop()


async def test_an_entry_a_kill_cut_is_ended_not_glued_to_the_next_one(tmp_path: Path) -> None:
    """A SIGKILL mid-write left ``S <b> ...`` without its newline (and its port "12" as "1").
    The restarted line must not append its next entry to it (one unreadable line: <c>'s report
    forgotten), nor replay the cut entry with its cut field."""
    journal = tmp_path / "sim.journal"
    a, b, c = (BASE_ID + i for i in range(3))
    journal.write_text(f"S {a} 1 0 7 3\nS {b} 1 0 7 1", encoding="ascii")
    clock = FakeClock()
    line, sink = await started(clock, journal=str(journal), report_delay_ms=60_000)
    await drain(clock)
    assert [r.line_ref for _, r in sink.reports] == [f"{a}.0"]  # not <b>'s, with port 1
    await line.submit(req(c))  # its report is pending at the next "crash"
    await line.stop()
    assert journal.read_text(encoding="ascii").splitlines() == [
        f"S {a} 1 0 7 3",
        f"S {b} 1 0 7 1~",
        f"A {a}.0",
        f"S {c} 1 0 0 0",
    ]

    clock2 = FakeClock(clock.now_ms() + 5_000)
    again, sink2 = await started(clock2, journal=str(journal))
    try:
        await drain(clock2)
        assert [r.line_ref for _, r in sink2.reports] == [f"{c}.0"]
    finally:
        await again.stop()


@pytest.mark.parametrize(
    ("field", "value"), [("failure_ratio", 1.5), ("ports", 0), ("driver", "x")]
)
def test_bad_sim_settings(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        SimLineSettings.model_validate({field: value})


class FlakySink(RecordingSink):
    """Refuses the first ``failures`` report batches, as a database that is briefly away."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def delivery_reports(self, line: str, reports: Sequence[LineReport]) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("database is locked")
        await super().delivery_reports(line, reports)


async def test_reports_survive_a_failing_sink() -> None:
    clock = FakeClock()
    line = SimLine("sim", SimLineSettings(), clock)
    sink = FlakySink(failures=2)
    await line.start(sink)
    try:
        await line.submit(req(BASE_ID, parts=2))
        await drain(clock)
        assert sink.reports == []  # the first try failed; nothing is lost
        assert line.pending_reports == 2
        await drain(clock, 1)
        await drain(clock, 2)
        assert sorted(r.line_ref for _, r in sink.reports) == [f"{BASE_ID}.0", f"{BASE_ID}.1"]
        # And the line keeps working afterwards.
        await line.submit(req(BASE_ID + 1))
        await drain(clock)
        assert len(sink.reports) == 3
    finally:
        await line.stop()


async def test_a_failing_sink_logs_its_start_and_end_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 14 item 10: one line when handing reports over starts failing, one when it works
    again (with how long and how many tries), not one per retry."""
    clock = FakeClock()
    line = SimLine("sim", SimLineSettings(), clock)
    sink = FlakySink(failures=30)
    await line.start(sink)
    try:
        with caplog.at_level(logging.DEBUG, logger="simgate.lines.sim"):
            await line.submit(req(BASE_ID))
            await drain(clock)
            for _ in range(31):
                await drain(clock, 1)
        assert len(sink.reports) == 1
    finally:
        await line.stop()
    mine = [r for r in caplog.records if r.name == "simgate.lines.sim"]
    assert [r.levelno for r in mine] == [logging.ERROR, logging.WARNING], caplog.text
    assert "database is locked" in mine[0].getMessage()
    assert "works again after 30.0 s, 30 failed cycles" in mine[1].getMessage()


async def test_a_batch_in_one_call_answers_and_reports_as_one_by_one(tmp_path: Path) -> None:
    """submit_batch (lines.base.BatchLine): the outcomes, refs, TP-MRs, reports and journal
    entries of submit, one by one; the ids that leave are marked once, before any leaves."""
    cfg = {"seed": 3, "failure_ratio": 0.3, "delivery_ratio": 0.6, "ports": 2}
    requests = [req(BASE_ID + i, port=i % 2, parts=1 + i % 3) for i in range(40)]

    async def run(batch: bool, journal: Path) -> tuple[list[SubmitResult], list[object], str]:
        clock = FakeClock()
        line, sink = await started(clock, journal=str(journal), **cfg)
        marks: list[list[int]] = []
        try:
            if batch:
                assert line.batches
                got = await line.submit_batch(requests, on_write=lambda ids: marks.append([*ids]))
            else:
                got = [await line.submit(r) for r in requests]
            await drain(clock)
        finally:
            await line.stop()
        if batch:
            left = [
                r.message_id for r, a in zip(requests, got, strict=True) if a.outcome is Outcome.OK
            ]
            assert marks == [left]
        return got, [r for _, r in sink.reports], await asyncio.to_thread(journal.read_text)

    alone = await run(False, tmp_path / "a")
    together = await run(True, tmp_path / "b")
    assert together == alone
    assert {r.outcome for r in alone[0]} == {Outcome.OK, Outcome.REJECTED}


async def test_a_line_whose_submits_wait_takes_no_batch_in_one_call() -> None:
    clock = FakeClock()
    line, _ = await started(clock, submit_latency_ms=5)
    try:
        assert not line.batches
    finally:
        await line.stop()
