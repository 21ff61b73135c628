"""The sender against a real local HTTP receiver (issue #3 "Done when").

Time is a FakeClock: backoff and Retry-After waits pass by advancing it; HTTP is real.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import select

from simgate.domain.pushes import AttemptResult, ClaimedPush
from simgate.errors import StoreError
from simgate.push.sender import PushQueue, PushSender
from simgate.push.signing import verify
from simgate.services.pushes import OutboxQueue
from simgate.settings import PushSettings
from simgate.store import Database
from simgate.store.push_tables import pushes
from simgate.store.pushes import attempts_of
from simgate.testing.push_receiver import (
    Answer,
    PushReceiver,
    Received,
    accept,
    always,
    fail_first,
    gather,
    hang,
)
from tests.push.conftest import PUSH_TEST_SETTINGS, PushRig


def _verify_all(rig: PushRig, receiver: PushReceiver) -> None:
    secret = rig.port_push.secret
    assert secret is not None
    for r in receiver.requests:
        assert verify(
            secret=secret,
            msg_id=r.headers["webhook-id"],
            timestamp=int(r.headers["webhook-timestamp"]),
            body=r.body,
            header=r.headers["webhook-signature"],
        )


async def test_failing_receiver_gets_it_once_with_the_same_id(rig: PushRig) -> None:
    """Three 503s, then accepted: delivered once, same webhook-id on all four attempts."""
    receiver = PushReceiver(fail_first(3, 503))
    await receiver.start()
    try:
        rig.port_push.urls["a"] = receiver.url + "/hook"
        await rig.plan("a", 1)
        await rig.start()
        await rig.until(lambda: rig.all_in("delivered", 1), what="delivery")
    finally:
        await receiver.stop()
    assert [s for _, s in receiver.answered] == [503, 503, 503, 200]
    (push,) = await rig.pushes()
    assert receiver.ids() == [push.uid] * 4
    assert push.attempts == 4
    assert push.last_status == 200
    assert len({r.headers["webhook-timestamp"] for r in receiver.requests}) > 1  # per attempt
    _verify_all(rig, receiver)
    sample = rig.services.metrics.registry.get_sample_value
    labels = {"host": "127.0.0.1"}  # the receiver's host, never its URL (issue 14 item 16)
    assert sample("simgate_push_attempts_total", {**labels, "outcome": "retry"}) == 3
    assert sample("simgate_push_attempts_total", {**labels, "outcome": "delivered"}) == 1
    assert sample("simgate_push_failures_total", labels) == 3
    await rig.services.pushes.refresh_metrics()
    assert sample("simgate_push_pending", {}) == 0


async def test_receiver_down_for_ten_minutes_loses_nothing(srig: PushRig) -> None:
    rig = srig
    with socket.socket() as s:  # a port nobody listens on (connection refused)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rig.port_push.urls["a"] = f"http://127.0.0.1:{port}/hook"
    for p in range(10):
        await rig.plan("a", p, count=2)
    await rig.start()
    start = rig.clock.now_ms()
    while rig.clock.now_ms() - start < 10 * 60 * 1000:  # ten simulated minutes of refusals
        await rig.clock.advance(5)
        await asyncio.sleep(0.002)
    down = await rig.pushes()
    assert {p.state for p in down} == {"pending"}
    # The head of each order key kept retrying; the second of each key waits behind it.
    heads = [p for p in down if p.attempts > 0]
    assert len(heads) == 10
    assert all(p.attempts >= 3 for p in heads)
    assert all(p.last_error and "Connect" in p.last_error for p in heads)
    receiver = PushReceiver(accept, port=port)
    await receiver.start()
    try:
        await rig.until(lambda: rig.all_in("delivered", 20), step=10, what="recovery")
    finally:
        await receiver.stop()
    assert sorted(set(receiver.ids())) == sorted(p.uid for p in down)
    assert len(receiver.requests) == 20  # each once: none was in flight when it came back
    # Per order key the planned order held (the format numbers nothing, the body tells).
    bodies = [json.loads(r.body) for r in receiver.requests]
    for p in range(10):
        ats = [b["at"] for b in bodies if b["port"] == p]
        assert ats == sorted(ats)


async def test_a_hanging_receiver_does_not_delay_a_healthy_one(srig: PushRig) -> None:
    rig = srig
    release = asyncio.Event()
    stuck = PushReceiver(hang(release))
    healthy = PushReceiver(accept)
    await stuck.start()
    await healthy.start()
    try:
        rig.port_push.urls["stuck"] = stuck.url + "/hook"
        rig.port_push.urls["ok"] = healthy.url + "/hook"
        for p in range(30):  # interleaved, the stuck ones planned first
            await rig.plan("stuck", p)
            await rig.plan("ok", p)
        await rig.start()
        for _ in range(200):
            if len(healthy.requests) == 30:
                break
            await asyncio.sleep(0.01)
        assert len(healthy.requests) == 30
        assert len(stuck.requests) == 4  # per_endpoint_concurrency, all still hanging
        assert stuck.answered == []
        await rig.until(
            lambda: _count(rig, "ok", "delivered", 30), step=0.01, what="healthy delivered"
        )
    finally:
        release.set()
        await stuck.stop()
        await healthy.stop()


async def _count(rig: PushRig, line: str, state: str, n: int) -> bool:
    rows = await rig.pushes(state)
    return sum(1 for r in rows if (r.order_key or "").startswith(line + ":")) == n


async def test_a_4xx_ends_the_push_and_a_redirect_is_not_followed(srig: PushRig) -> None:
    rig = srig
    gone = PushReceiver(always(404))
    moved = PushReceiver(always(302, {"location": "http://169.254.169.254/"}))
    await gone.start()
    await moved.start()
    try:
        rig.port_push.urls["gone"] = gone.url + "/x"
        rig.port_push.urls["moved"] = moved.url + "/x"
        await rig.plan("gone", 1)
        await rig.plan("moved", 1)
        await rig.start()
        await rig.until(lambda: rig.all_in("failed", 2), what="failure")
        await rig.clock.advance(3600)
        await asyncio.sleep(0.05)
    finally:
        await gone.stop()
        await moved.stop()
    assert len(gone.requests) == 1
    assert len(moved.requests) == 1
    rows = {r.endpoint.rsplit(":", 1)[1]: r for r in await rig.pushes()}
    assert rows[str(gone.port)].last_status == 404
    assert rows[str(moved.port)].last_status == 302
    assert rows[str(gone.port)].attempts == 1


async def test_retry_after_is_honoured(srig: PushRig) -> None:
    rig = srig
    date = email.utils.formatdate((rig.clock.now_ms() + 120_000 + 300_000) / 1000, usegmt=True)
    answers = iter([(429, {"retry-after": "300"}), (503, {"retry-after": date}), (200, {})])

    async def behaviour(_: Received) -> Answer:
        status, headers = next(answers)
        return Answer(status, headers)

    receiver = PushReceiver(behaviour)
    await receiver.start()
    try:
        rig.port_push.urls["a"] = receiver.url
        await rig.plan("a", 1)
        await rig.start()
        await rig.until(lambda: _received(receiver, 1), step=0.1, what="first attempt")
        t1 = rig.clock.now_ms()
        (push,) = await rig.pushes()
        await rig.until(lambda: _next_after(rig, t1), step=0.01, what="retry scheduled")
        (push,) = await rig.pushes()
        assert push.next_attempt_ms - t1 in range(299_000, 300_001)  # Retry-After: 300
        await rig.clock.advance(290)
        await asyncio.sleep(0.05)
        assert len(receiver.requests) == 1  # not before the receiver asked
        await rig.until(lambda: _received(receiver, 2), step=1, what="second attempt")
        assert rig.clock.now_ms() - t1 >= 300_000
        t2 = rig.clock.now_ms()
        await rig.until(lambda: _next_after(rig, t2), step=0.01, what="retry scheduled")
        (push,) = await rig.pushes()
        # HTTP-date: planned at start + 420 s, so the next attempt is due then (±1 s).
        assert abs(push.next_attempt_ms - (push.created_ms + 420_000)) <= 1000
        await rig.until(lambda: rig.all_in("delivered", 1), step=1, what="delivery")
    finally:
        await receiver.stop()
    assert [s for _, s in receiver.answered] == [429, 503, 200]


async def _received(receiver: PushReceiver, n: int) -> bool:
    return len(receiver.requests) >= n


async def _next_after(rig: PushRig, t: int) -> bool:
    rows = await rig.pushes("pending")
    return bool(rows) and rows[0].next_attempt_ms > t and not rows[0].in_flight


async def test_ordering_per_order_key_holds_through_retries(srig: PushRig) -> None:
    """The first push of key a:1 fails twice; its successors wait; key a:2 goes ahead."""
    rig = srig
    receiver = PushReceiver(fail_first(2, 500))
    await receiver.start()
    try:
        rig.port_push.urls["a"] = receiver.url
        await rig.plan("a", 1, up=True)
        for _ in range(4):
            await rig.clock.advance(0.001)
            await rig.plan("a", 1, up=False)
        await rig.start()
        await rig.until(lambda: _received(receiver, 2), step=0.5, what="two failures")
        await rig.plan("a", 2)  # another key: not held up by a:1's retries
        await rig.until(lambda: rig.all_in("delivered", 6), step=1, what="all delivered")
    finally:
        await receiver.stop()
    bodies = [json.loads(r.body) for r, status in receiver.answered if status == 200]
    a1 = [b for b in bodies if b["port"] == 1]
    assert [b["up"] for b in a1] == [True, False, False, False, False]
    assert [b["at"] for b in a1] == sorted(b["at"] for b in a1)
    first_ok = next(i for i, b in enumerate(bodies) if b["port"] == 1)
    a2 = next(i for i, b in enumerate(bodies) if b["port"] == 2)
    assert a2 < first_ok  # the other key overtook the retrying one


async def test_past_the_horizon_a_push_is_dead_and_can_be_retried(srig: PushRig) -> None:
    rig = srig
    receiver = PushReceiver(always(500))
    await receiver.start()
    try:
        rig.port_push.urls["a"] = receiver.url
        await rig.plan("a", 1)
        await rig.start()
        await rig.until(lambda: rig.all_in("dead", 1), step=600, max_steps=300, what="dead")
        (dead,) = await rig.pushes("dead")
        assert dead.done_ms is not None
        assert dead.done_ms - dead.created_ms >= 24 * 3600 * 1000  # retried a whole day
        assert dead.attempts >= 10  # backoff is capped at an hour (time moves in 10 min steps)
        assert dead.last_status == 500
        tries = len(receiver.requests)
        receiver.behaviour = accept
        assert await rig.services.pushes.retry(states=["dead"]) == 1
        await rig.until(lambda: rig.all_in("delivered", 1), what="delivery after retry")
    finally:
        await receiver.stop()
    assert len(receiver.requests) == tries + 1
    assert set(receiver.ids()) == {dead.uid}


async def test_a_name_resolving_to_a_private_address_fails_at_connect(srig: PushRig) -> None:
    rig = srig
    rig.port_push.urls["a"] = "http://93.184.215.14.nip.example/hook"

    class Resolver:
        async def resolve(self, host: str, port: int) -> list[str]:
            return ["10.0.0.1"]

    rig.services.pushes.guard.resolver = Resolver()
    await rig.plan("a", 1)
    await rig.start()
    await rig.until(lambda: rig.all_in("failed", 1), step=0.1, what="refusal")
    (push,) = await rig.pushes()
    assert push.last_error is not None
    assert "10.0.0.1" in push.last_error
    assert push.attempts == 1


@pytest.mark.parametrize(
    ("header", "value", "error"),
    [
        # A value with a line break: h11 refuses to write the request (a format's bug).
        ("X-Note", "two\r\nX-Injected: 1", "LocalProtocolError"),
        # A header that cannot be written (push/wire.py).
        ("X-Name", "Zoë", "not ASCII"),
    ],
)
async def test_a_request_that_cannot_be_sent_fails_at_once(
    srig: PushRig, header: str, value: str, error: str
) -> None:
    """A request that cannot be written: failed at once, not retried for a day."""
    rig = srig
    receiver = PushReceiver(accept)
    await receiver.start()
    try:
        rig.port_push.urls["a"] = receiver.url
        rig.port_push.headers[header] = value
        await rig.plan("a", 1)
        await rig.start()
        await rig.until(lambda: rig.all_in("failed", 1), step=0.1, what="failure")
    finally:
        await receiver.stop()
    assert receiver.requests == []
    (push,) = await rig.pushes()
    assert push.attempts == 1
    assert push.last_error is not None
    assert error in push.last_error


async def test_two_workers_never_send_a_push_twice(rig: PushRig) -> None:
    """Two senders with their own database connections share one outbox."""
    # Each sender has at most per_endpoint_concurrency (4) pushes in flight to the endpoint:
    # the receiver answers none until 5 are held, so both senders must be sending (one fast
    # sender could otherwise drain the outbox before the other's first poll).
    receiver = PushReceiver(gather(PUSH_TEST_SETTINGS["per_endpoint_concurrency"] + 1))
    await receiver.start()
    sv = rig.services
    other_db = Database(rig.rt.settings.effective_database_url)
    await other_db.open()
    second = PushSender(
        queue=OutboxQueue(db=other_db, metrics=sv.metrics),
        settings=sv.pushes.settings,
        clock=rig.clock,
        metrics=sv.metrics,
        guard=sv.pushes.guard,
    )
    try:
        rig.port_push.urls["a"] = receiver.url
        for port in range(60):
            await rig.plan("a", port, count=2)  # 60 keys, two pushes each
        await rig.start()
        await second.start()
        await rig.until(lambda: rig.all_in("delivered", 120), step=0.05, what="all delivered")
    finally:
        await second.stop()
        await other_db.close()
        await receiver.stop()
    ids = receiver.ids()
    assert len(ids) == 120
    assert len(set(ids)) == 120  # nobody got one twice
    owners = {p.uid for p in await rig.pushes("delivered")}
    assert owners == set(ids)
    assert rig.sender is not None
    assert rig.sender.attempted > 0  # both took part
    assert second.attempted > 0
    # Every attempt was counted once, by the sender that made it. More than 120 happens on a
    # loaded machine (CI once saw 125): a connect or a pooled keep-alive connection can fail
    # before the request reaches the receiver, and the push is retried. The receiver saw each
    # push once (above), so each extra attempt is a logged retry ahead of its delivery.
    delivered = await rig.pushes("delivered")
    assert rig.sender.attempted + second.attempted == sum(p.attempts for p in delivered)
    async with rig.rt.store.db.read() as conn:
        for p in (p for p in delivered if p.attempts > 1):
            outcomes = [a.outcome for a in await attempts_of(conn, p.id)]
            assert outcomes == ["retry"] * (p.attempts - 1) + ["delivered"], (p.uid, outcomes)


async def test_metrics_name_the_receivers_host_not_its_url(rig: PushRig) -> None:
    """Issue 14 item 16: /metrics listed customers' push URLs; labels carry the host only."""
    receiver = PushReceiver(accept)
    await receiver.start()
    try:
        rig.port_push.urls["a"] = receiver.url + "/hooks/acme-7f3a9c?token=s3cr3t"
        await rig.plan("a", 1)
        await rig.start()
        await rig.until(lambda: rig.all_in("delivered", 1), what="delivery")
    finally:
        await receiver.stop()
    text = generate_latest(rig.services.metrics.registry).decode()
    attempts = [line for line in text.splitlines() if line.startswith("simgate_push_attempts")]
    assert attempts, text
    assert 'host="127.0.0.1"' in attempts[0]
    for leak in ("http://", "acme-7f3a9c", "s3cr3t", f":{receiver.url.rsplit(':', 1)[1]}"):
        assert leak not in text, leak


async def test_a_recovered_receiver_gets_its_waiting_pushes_at_once(srig: PushRig) -> None:
    """Issue 14 item 15: once an endpoint answers 2xx again, its other waiting pushes go now,
    not each at the end of its own backoff (300 pushes took 264 s to drain)."""
    rig = srig
    status = [503]

    async def down_then_up(_: Received) -> Answer:
        return Answer(status[0])

    receiver = PushReceiver(down_then_up)
    await receiver.start()
    try:
        rig.port_push.urls["a"] = receiver.url + "/hook"
        for p in range(20):  # 20 order keys: each retries on its own backoff
            await rig.plan("a", p)
        await rig.start()
        start = rig.clock.now_ms()
        while rig.clock.now_ms() - start < 10 * 60 * 1000:  # ten simulated minutes of 503s
            await rig.clock.advance(5)
            await asyncio.sleep(0.002)
        waiting = await rig.pushes("pending")
        assert len(waiting) == 20
        assert all(p.attempts >= 3 for p in waiting)
        due = sorted(p.next_attempt_ms for p in waiting)
        assert due[-1] - due[0] > 30_000  # their backoffs end far apart
        status[0] = 200
        # The first push whose backoff ends finds the receiver back...
        await rig.until(lambda: _delivered_at_least(rig, 1), step=1, max_steps=3600)
        # ...and the others follow at once, not at the ends of their own backoffs: within 5
        # fake seconds (the backoffs end > 30 s apart), in small steps so a loaded machine
        # gets the real time for the claims and writes (10 steps of 0.5 s gave it 50 ms).
        await rig.until(lambda: rig.all_in("delivered", 20), step=0.05, max_steps=100)
    finally:
        await receiver.stop()
    assert sorted(set(receiver.ids())) == sorted(p.uid for p in waiting)


async def _delivered_at_least(rig: PushRig, n: int) -> bool:
    return len(await rig.pushes("delivered")) >= n


async def test_a_live_worker_renews_its_claims_so_the_lease_can_be_short(srig: PushRig) -> None:
    """Issue 14 item 15: a crashed worker's claims come back after one short lease (not
    after 300 s), because a live worker renews the claims it still holds while sending."""
    assert PushSettings().lease_seconds <= 60  # what a crash costs by default
    rig = srig
    sender = _sender(rig, lease_seconds=30.0, total_timeout_seconds=15.0)
    async with _hanging_receiver() as receiver:
        try:
            rig.port_push.urls["a"] = receiver.url + "/hook"
            await rig.plan("a", 0)
            claimed = rig.clock.now_ms()
            await sender.start()
            await _requests_reach(receiver, 1)  # real I/O
            assert await _lease_until(rig) == claimed + 30_000
            for _ in range(12):  # still sending (the attempt may take 15 s): renewed meanwhile
                await rig.clock.advance(1)
                await asyncio.sleep(0.01)
            assert await _lease_until(rig) > claimed + 30_000
        finally:
            await sender.stop()


def _sender(rig: PushRig, **settings: Any) -> PushSender:
    """A sender of the test's own on the rig's outbox, ``settings`` changed (not started)."""
    sv = rig.services
    return PushSender(
        queue=sv.pushes.queue,
        settings=sv.pushes.settings.model_copy(update=settings),
        clock=rig.clock,
        metrics=sv.metrics,
        guard=sv.pushes.guard,
    )


@contextlib.asynccontextmanager
async def _hanging_receiver() -> AsyncIterator[PushReceiver]:
    """A receiver that answers nothing until the block ends."""
    release = asyncio.Event()
    receiver = PushReceiver(hang(release))
    await receiver.start()
    try:
        yield receiver
    finally:
        release.set()
        await receiver.stop()


async def _requests_reach(receiver: PushReceiver, n: int) -> None:
    """Until ``receiver`` got ``n`` requests (real I/O: real time), or a few seconds."""
    for _ in range(500):
        if len(receiver.requests) >= n:
            return
        await asyncio.sleep(0.01)


async def _lease_until(rig: PushRig) -> int:
    async with rig.rt.store.db.read() as conn:
        (until,) = (await conn.execute(select(pushes.c.lease_until_ms))).scalars()
    return int(until)


class RecordFailsFirst:
    """The outbox while the database fails: its first ``n`` ``record`` calls raise (the
    receiver answered, the outcome cannot be written yet); everything else is the outbox's."""

    def __init__(self, inner: PushQueue, n: int) -> None:
        self.inner = inner
        self.left = n

    async def claim(self, **kw: Any) -> list[ClaimedPush]:
        return await self.inner.claim(**kw)

    async def record(
        self,
        results: Sequence[AttemptResult],
        *,
        owner: str,
        now_ms: int,
        lease_until_ms: int | None = None,
    ) -> list[ClaimedPush]:
        if self.left > 0:
            self.left -= 1
            raise StoreError("database unavailable")
        return await self.inner.record(
            results, owner=owner, now_ms=now_ms, lease_until_ms=lease_until_ms
        )

    async def refresh_gauges(self, *, now_ms: int) -> None:
        await self.inner.refresh_gauges(now_ms=now_ms)

    async def renew(self, ids: Sequence[int], *, owner: str, lease_until_ms: int) -> None:
        await self.inner.renew(ids, owner=owner, lease_until_ms=lease_until_ms)


async def test_an_outage_while_recording_logs_its_start_and_end_not_every_try(
    srig: PushRig, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14 item 10: recording outcomes during a database outage logged a traceback every
    half second. Now one ERROR when it starts failing, one WARNING when it works again; the
    outcome is kept meanwhile and recorded once the database is back."""
    rig = srig
    receiver = PushReceiver(accept)
    await receiver.start()
    try:
        rig.port_push.urls["a"] = receiver.url
        await rig.plan("a", 1)
        with caplog.at_level(logging.DEBUG, logger="simgate.push.sender"):
            await rig.start(queue=RecordFailsFirst(rig.services.pushes.queue, 3))
            await rig.until(lambda: rig.all_in("delivered", 1), step=0.1, what="delivery")
    finally:
        await receiver.stop()
    assert len(receiver.requests) == 1  # sent once; only its recording waited
    mine = [r for r in caplog.records if r.name == "simgate.push.sender"]
    assert [r.levelno for r in mine] == [logging.ERROR, logging.WARNING], [
        r.getMessage() for r in mine
    ]
    assert (
        "recording push outcomes failing: StoreError: database unavailable" in mine[0].getMessage()
    )
    assert "recording push outcomes works again" in mine[1].getMessage()
    assert "3 failed cycles" in mine[1].getMessage()


async def test_a_stored_push_wakes_an_idle_sender_without_a_poll(rig: PushRig) -> None:
    """Issue 15: the outbox wakes the claim loop; the fake clock never moves here, so without
    the wake-up the push would wait for a poll that never comes."""
    receiver = PushReceiver(always(200))
    await receiver.start()
    try:
        rig.port_push.urls["a"] = receiver.url + "/hook"
        sender = await rig.start()
        for _ in range(20):
            await asyncio.sleep(0.01)
        idle = sender.claim_loop.cycles
        await asyncio.sleep(0.2)
        assert sender.claim_loop.cycles == idle  # no poll while idle
        await rig.plan("a", 1)
        for _ in range(500):
            if receiver.requests:
                break
            await asyncio.sleep(0.01)
        assert len(receiver.requests) == 1
    finally:
        await receiver.stop()


async def test_a_receiver_slower_than_the_total_timeout_is_a_timeout_and_stop_a_release(
    srig: PushRig,
) -> None:
    """The sender's own attempts time out through their cancel scope's deadline (issue 15):
    the receiver that does not answer within ``total_timeout_seconds`` makes a retry
    "timeout" (attempts counted, the attempt logged), while an attempt that stop() cuts
    short is released, not counted as a timeout."""
    rig = srig
    async with _hanging_receiver() as receiver:
        rig.port_push.urls["a"] = receiver.url + "/hook"
        await rig.plan("a", 0)
        quick = _sender(rig, total_timeout_seconds=0.2)
        await quick.start()
        try:
            for _ in range(300):  # real time: the attempt hangs until its deadline
                if quick.attempted:
                    break
                await asyncio.sleep(0.01)
            await rig.until(lambda: _attempts_recorded(rig, 1), step=0.01, what="timeout recorded")
        finally:
            await quick.stop()
        (row,) = await rig.pushes()
        assert (row.state, row.attempts, row.last_error) == ("pending", 1, "timeout")
        assert not row.in_flight

        await rig.clock.advance(3600)  # the retry is due
        slow = _sender(rig, total_timeout_seconds=10.0)
        await slow.start()
        await _requests_reach(receiver, 2)
        assert len(receiver.requests) == 2
        await slow.stop()  # mid-attempt: released, not a timeout
        (row,) = await rig.pushes()
        assert (row.state, row.attempts, row.last_error) == ("pending", 1, "timeout")
        assert not row.in_flight
        assert slow.attempted == 0


async def _attempts_recorded(rig: PushRig, n: int) -> bool:
    (row,) = await rig.pushes()
    return row.attempts == n


class CountingQueue:
    """The outbox, counting the pushes the sender got from claims and from recordings."""

    def __init__(self, inner: PushQueue) -> None:
        self.inner = inner
        self.claimed: list[int] = []
        self.carried: list[int] = []

    async def claim(self, **kw: Any) -> list[ClaimedPush]:
        got = await self.inner.claim(**kw)
        self.claimed += [p.id for p in got]
        return got

    async def record(
        self,
        results: Sequence[AttemptResult],
        *,
        owner: str,
        now_ms: int,
        lease_until_ms: int | None = None,
    ) -> list[ClaimedPush]:
        got = await self.inner.record(
            results, owner=owner, now_ms=now_ms, lease_until_ms=lease_until_ms
        )
        self.carried += [p.id for p in got]
        return got

    async def refresh_gauges(self, *, now_ms: int) -> None:
        await self.inner.refresh_gauges(now_ms=now_ms)

    async def renew(self, ids: Sequence[int], *, owner: str, lease_until_ms: int) -> None:
        await self.inner.renew(ids, owner=owner, lease_until_ms=lease_until_ms)


async def test_an_order_key_carries_on_from_its_recorded_push_without_a_claim(
    rig: PushRig,
) -> None:
    """Issue 15, the ordered lanes' claim: a key's first push comes from a claim, each next
    one from the transaction that recorded the one before (one index seek, not the claim's
    walk of the due index); the receiver still gets them in the order planned."""
    receiver = PushReceiver(always(200))
    await receiver.start()
    try:
        rig.port_push.urls["a"] = receiver.url + "/hook"
        await rig.plan("a", 1, count=6)
        queue = CountingQueue(rig.services.pushes.queue)
        await rig.start(queue)
        await rig.until(lambda: rig.all_in("delivered", 6), step=0.01, what="all delivered")
    finally:
        await receiver.stop()
    ids = sorted(r.id for r in await rig.pushes())
    assert queue.claimed == ids[:1]
    assert queue.carried == ids[1:]
    assert [r.headers["webhook-id"] for r in receiver.requests] == [
        r.uid for r in sorted(await rig.pushes(), key=lambda r: r.id)
    ]


async def test_an_endpoint_is_refilled_once_an_eighth_of_its_window_is_free(
    srig: PushRig,
) -> None:
    """The claim sees an endpoint short of a refill of free slots as full, so a busy
    endpoint is not claimed for (a walk of the due index) a slot or two at a time."""
    sv = srig.services
    settings = sv.pushes.settings.model_copy(update={"per_endpoint_window": 512})
    sender = PushSender(
        queue=sv.pushes.queue,
        settings=settings,
        clock=srig.clock,
        metrics=sv.metrics,
        guard=sv.pushes.guard,
    )
    sender._busy.update({"http://a:80": 449, "http://b:80": 448, "http://c:80": 1})
    assert sender._claim_busy() == {
        "http://a:80": 512,  # 63 free: not yet
        "http://b:80": 448,  # 64 free: claimed for
        "http://c:80": 1,
    }
