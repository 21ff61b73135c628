"""The push sender: claim due rows, send them per endpoint, record outcomes in batches.

Runs in worker processes (``Runtime.start_worker``). Three parts:

- the *claim loop* leases due rows from its :class:`PushQueue` up to ``max_inflight`` in total and
  ``per_endpoint_window`` per endpoint, so one dead receiver can hold only its own window;
- one task per claimed row sends it on one of its endpoint's lanes (push/lanes.py,
  ``per_endpoint_concurrency`` of them): a slow or hanging receiver delays nobody else;
- the *recorder* writes every finished attempt gathered meanwhile in one transaction
  (group commit: the throughput aim needs batched writes), then frees the slots. The next
  push of an order key becomes claimable only then: that transaction leases it too (one
  index seek per key, the ordered lanes' claim) and the recorder starts it in the slot its
  predecessor freed; the claim loop is woken for the rest once an endpoint has a
  ``refill`` of free slots (``_refill``), not after every batch (issue 15).

Crash safety: the lease is committed before sending and the outcome after; a worker that
dies in between leaves leased rows that become claimable when the lease expires, so every
push is delivered at least once, and twice only if it was in flight at the crash. A live
worker renews the leases it holds every third of one, so the lease is short (60 s) and so is
a crashed worker's hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Mapping, Sequence
from typing import Protocol

import anyio
import httpcore
from prometheus_client import Counter

from simgate.clock import Clock
from simgate.domain.pushes import AttemptResult, ClaimedPush
from simgate.lease_loop import PUSHES, FailureRun, LeaseLoop, Wakeup
from simgate.metrics import Metrics, host_label
from simgate.push.lanes import Lanes
from simgate.push.policy import Verdict, classify, next_attempt_ms, retry_after_seconds
from simgate.push.settings import PushSettings
from simgate.push.signing import webhook_headers
from simgate.push.ssrf import UnsafeUrl, UrlGuard
from simgate.push.wire import BadHeader, Wire

log = logging.getLogger(__name__)

RECORD_RETRY_SECONDS = 0.5  # between tries to record outcomes while the database fails
# (endpoint, outcome) pairs whose metric counters a sender keeps at hand (``_count``).
MAX_COUNTED_ENDPOINTS = 4096


class PushQueue(Protocol):
    """The durable outbox as the sender sees it (services/pushes.py implements it)."""

    async def claim(
        self,
        *,
        owner: str,
        now_ms: int,
        lease_until_ms: int,
        limit: int,
        window: int,
        busy: Mapping[str, int],
    ) -> list[ClaimedPush]:
        """Lease up to ``limit`` due pushes until ``lease_until_ms``, at most
        ``window - busy[endpoint]`` per endpoint, the head of each order key only."""
        ...

    async def record(
        self,
        results: Sequence[AttemptResult],
        *,
        owner: str,
        now_ms: int,
        lease_until_ms: int | None = None,
    ) -> list[ClaimedPush]:
        """Apply outcomes after the attempts: a delivery always, anything else only while
        ``owner`` still holds the lease. With ``lease_until_ms``, in the same transaction,
        lease to ``owner`` the next push of each order key whose push ended (delivered,
        failed, dead) when it is due and free, and return those."""
        ...

    async def refresh_gauges(self, *, now_ms: int) -> None:
        """Set the outbox gauges (pending, dead, oldest pending age)."""
        ...

    async def renew(self, ids: Sequence[int], *, owner: str, lease_until_ms: int) -> None:
        """Extend ``owner``'s leases of the pending rows ``ids`` to ``lease_until_ms``."""
        ...


class PushSender:
    def __init__(
        self,
        *,
        queue: PushQueue,
        settings: PushSettings,
        clock: Clock,
        metrics: Metrics,
        guard: UrlGuard,
        owner: str | None = None,
        rng: random.Random | None = None,
        wakeup: Wakeup | None = None,
        idle_max_seconds: float | None = None,
    ) -> None:
        self._queue = queue
        self._cfg = settings
        self._clock = clock
        self._metrics = metrics
        self._guard = guard
        self.owner = owner or f"push-{uuid.uuid4().hex[:12]}"
        self._rng = rng or random.Random()
        self._lanes: Lanes | None = None
        self._wire = Wire(settings)
        self._busy: dict[str, int] = {}
        self._results: list[AttemptResult] = []
        self._have_results = asyncio.Event()
        # Push rows stored in this process (or NOTIFYed by others) wake the claim loop, so
        # its poll backs off to idle_max_seconds while nothing comes (issue 15).
        self._claims = LeaseLoop(
            "push claim",
            cycle=self._cycle,
            clock=clock,
            idle_seconds=settings.idle_poll_seconds,
            idle_max_seconds=idle_max_seconds,
        )
        self._wakeup = wakeup
        if wakeup is not None:
            wakeup.attach(PUSHES, self._claims)
        self._attempts: set[asyncio.Task[None]] = set()
        self._scopes: set[anyio.CancelScope] = set()
        self._recorder: asyncio.Task[None] | None = None
        self._stopping = False  # stop() cancels the attempts' scopes: not their timeouts
        self._renewer: asyncio.Task[None] | None = None
        # Rows claimed and not yet recorded, with the lease each holds (renewed meanwhile).
        self._held: dict[int, int] = {}
        self._next_metrics_ms = 0
        self._retry_due_ms: int | None = None  # the earliest retry recorded (issue 15)
        self.attempted = 0  # attempts finished by this sender (tests, diagnostics)
        self._counters: dict[tuple[str, str], tuple[Counter, Counter | None]] = {}

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._stopping = False
        self._lanes = Lanes(self._guard, self._cfg)
        self._claims.start()
        self._recorder = asyncio.create_task(self._record_loop(), name="push-record")
        self._renewer = asyncio.create_task(self._renew_loop(), name="push-renew")

    async def stop(self) -> None:
        """Stop claiming; attempts still running are abandoned and their rows released.

        Attempts are cancelled through anyio scopes, not ``Task.cancel``: httpcore shields
        its connection clean-up with anyio, and a native cancellation would cut it short and
        leak sockets of *other* endpoints it was closing on the way.
        """
        with contextlib.suppress(Exception):
            await self._claims.stop()
        if self._wakeup is not None:
            self._wakeup.detach(self._claims)
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        self._stopping = True
        for scope in list(self._scopes):
            scope.cancel()
        for task in list(self._attempts):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        record_loop, self._recorder = self._recorder, None
        if record_loop is not None:
            record_loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await record_loop
            with contextlib.suppress(Exception):
                await self._flush()
        if self._lanes is not None:
            await self._lanes.aclose()
            self._lanes = None

    @property
    def claim_loop(self) -> LeaseLoop:
        """The claim loop (tests count its cycles)."""
        return self._claims

    @property
    def in_flight(self) -> int:
        return sum(self._busy.values())

    # ---- claiming --------------------------------------------------------------------
    async def _cycle(self) -> bool:
        """Claim as much as there is room for; busy (claim again at once) while every claim
        fills the room. A full window idles until a recorded batch frees slots (wake)."""
        got = 0
        room = min(self._cfg.batch_size, self._cfg.max_inflight - self.in_flight)
        if room > 0:
            got = await self.claim_once(room)
        await self._refresh_metrics()
        self._announce_retry()
        return room > 0 and got >= room

    def _announce_retry(self) -> None:
        """An idle claim loop wakes for the earliest retry this sender scheduled."""
        due = self._retry_due_ms
        if due is None:
            return
        now = self._clock.now_ms()
        if due <= now:
            self._retry_due_ms = None  # this cycle's claim saw it due
        else:
            self._claims.due_in((due - now) / 1000)

    async def claim_once(self, limit: int) -> int:
        now = self._clock.now_ms()
        claimed = await self._queue.claim(
            owner=self.owner,
            now_ms=now,
            lease_until_ms=now + int(self._cfg.lease_seconds * 1000),
            limit=limit,
            window=self._cfg.per_endpoint_window,
            busy=self._claim_busy(),
        )
        for push in claimed:
            self._start(push)
        return len(claimed)

    def _refill(self) -> int:
        """The free slots an endpoint needs before the claim loop claims for it again. A
        claim reads the due index past every row leased or held back by its order key (a
        walk over the pending rows); refilled a slot or two at a time, once per recorded
        batch, that walk was a tenth of the sender's CPU (py-spy, bench/push_throughput.py).
        The rows still held wait for a lane meanwhile, so the lanes do not run dry."""
        return max(1, self._cfg.per_endpoint_window // 8)

    def _claim_busy(self) -> dict[str, int]:
        """The busy counts the claim sees: an endpoint short of a refill of free slots
        counts as full (the claim takes none of its rows, and reads none with few
        endpoints pending: store/pushes.py ``claim``)."""
        window = self._cfg.per_endpoint_window
        low = window - self._refill()
        return {ep: (window if n > low else n) for ep, n in self._busy.items()}

    def _start(self, push: ClaimedPush) -> None:
        self._held[push.id] = push.lease_until_ms
        self._busy[push.endpoint] = self._busy.get(push.endpoint, 0) + 1
        task = asyncio.create_task(self._run(push))
        self._attempts.add(task)
        task.add_done_callback(self._attempts.discard)

    # ---- sending ---------------------------------------------------------------------
    async def _run(self, push: ClaimedPush) -> None:
        result = AttemptResult(push.id, push.endpoint, "release")  # if cancelled by stop()
        if self._stopping:  # started after stop() cancelled the scopes: give it back
            self._results.append(result)
            self._have_results.set()
            return
        # One cancel scope per attempt, for stop() and for the total timeout (its deadline,
        # set once a lane is free): anyio's fail_after inside it cost a second scope, two
        # generator context managers and async-library lookups per push, ~20 us of ~450 us
        # per push in bench/push_throughput.py (issue 15).
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        try:
            with scope:
                assert self._lanes is not None, "start() first"
                async with self._lanes.lane(push.endpoint) as pool:  # waits for a free lane
                    result = await self._attempt(pool, push, scope)
            if scope.cancelled_caught and not self._stopping:  # the deadline, not stop()
                result = self._retry(push, status=None, error="timeout", retry_after=None)
        except Exception as exc:  # a bug must not lose the row: retry it later
            log.exception("push %s attempt crashed", push.uid)
            result = self._retry(push, status=None, error=f"internal: {exc!r}", retry_after=None)
        finally:
            self._scopes.discard(scope)
            self._results.append(result)
            self._have_results.set()
            self._count(result)

    async def attempt(self, push: ClaimedPush) -> AttemptResult:
        """One HTTP attempt; never raises for anything the receiver or network does."""
        assert self._lanes is not None, "start() first"
        async with self._lanes.lane(push.endpoint) as pool:  # waits for a free lane
            return await self._attempt(pool, push, None)

    async def _attempt(
        self,
        pool: httpcore.AsyncConnectionPool,
        push: ClaimedPush,
        scope: anyio.CancelScope | None,
    ) -> AttemptResult:
        """The attempt on a lane. With ``scope`` (the sender's own attempts, ``_run``), the
        total timeout is that scope's deadline and ends the scope: the caller records it."""
        now = self._clock.now_ms()
        lease_until = self._held.get(push.id, push.lease_until_ms)
        if lease_until - now < self._cfg.total_timeout_seconds * 1000:
            # Queued locally too long: another worker may take it any moment now.
            return AttemptResult(push.id, push.endpoint, "release")
        try:
            self._guard.check_static(push.url)
        except UnsafeUrl as exc:
            return AttemptResult(push.id, push.endpoint, "failed", error=str(exc))
        body = push.body or b""
        headers = push.headers
        if push.signing_secret:
            headers = {
                **headers,
                **webhook_headers(
                    secret=push.signing_secret, msg_id=push.uid, timestamp=now // 1000, body=body
                ),
            }
        try:
            # Built before the clock starts: a request that cannot be written fails as such.
            request = self._wire.request(
                method=push.method,
                url=push.url,
                headers=headers,
                body=body if (push.method != "GET" or body) else None,
            )
            # anyio's scope, not asyncio.timeout: httpcore runs on anyio, and a native
            # cancellation inside its cancel scopes can leave a socket unclosed.
            if scope is not None:  # anyio's clock on asyncio is the loop's
                scope.deadline = asyncio.get_running_loop().time() + self._cfg.total_timeout_seconds
                answer = await self._wire.exchange(pool, request)
            else:
                with anyio.fail_after(self._cfg.total_timeout_seconds):
                    answer = await self._wire.exchange(pool, request)
        except UnsafeUrl as exc:  # refused at connect time, after resolution
            return AttemptResult(push.id, push.endpoint, "failed", error=str(exc))
        except (BadHeader, httpcore.LocalProtocolError, httpcore.UnsupportedProtocol) as exc:
            # Our request cannot be sent (e.g. a format built a header with a newline):
            # retrying would not change it.
            return AttemptResult(push.id, push.endpoint, "failed", error=repr(exc)[:255])
        except (TimeoutError, httpcore.TimeoutException):
            return self._retry(push, status=None, error="timeout", retry_after=None)
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.ProxyError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            return self._retry(push, status=None, error=error, retry_after=None)
        status = answer.status
        verdict = classify(status)
        if verdict is Verdict.ACCEPTED:
            return AttemptResult(push.id, push.endpoint, "delivered", status=status)
        if verdict is Verdict.FAILED:
            return AttemptResult(
                push.id, push.endpoint, "failed", status=status, error=f"HTTP {status}"
            )
        delay = retry_after_seconds(answer.retry_after, now_ms=self._clock.now_ms())
        return self._retry(push, status=status, error=f"HTTP {status}", retry_after=delay)

    def _retry(
        self, push: ClaimedPush, *, status: int | None, error: str, retry_after: float | None
    ) -> AttemptResult:
        cfg = self._cfg
        when = next_attempt_ms(
            attempts=push.attempts + 1,
            now_ms=self._clock.now_ms(),
            created_ms=push.since_ms,
            retry_after=retry_after,
            base=cfg.retry_base_seconds,
            cap=cfg.retry_max_seconds,
            retry_after_cap=cfg.retry_after_max_seconds,
            give_up_after=cfg.give_up_after_seconds,
            rng=self._rng,
        )
        if when is None:
            return AttemptResult(push.id, push.endpoint, "dead", status=status, error=error)
        return AttemptResult(
            push.id, push.endpoint, "retry", status=status, error=error, next_attempt_ms=when
        )

    def _count(self, result: AttemptResult) -> None:
        if result.outcome == "release":
            return
        self.attempted += 1
        key = (result.endpoint, result.outcome)
        counters = self._counters.get(key)
        if counters is None:
            # The labelled counters of an endpoint and outcome, looked up once: the host's
            # parse and two label look-ups cost ~7 us per push (timeit), 1.5 % of a push.
            if len(self._counters) >= MAX_COUNTED_ENDPOINTS:
                self._counters.clear()
            m = self._metrics
            host = host_label(result.endpoint)  # never the URL (issue 14 item 16)
            failures = None if result.outcome == "delivered" else m.push_failures.labels(host)
            counters = self._counters[key] = (
                m.push_attempts.labels(host, result.outcome),
                failures,
            )
        counters[0].inc()
        if counters[1] is not None:
            counters[1].inc()

    # ---- recording -------------------------------------------------------------------
    async def _record_loop(self) -> None:
        # A database outage fails every try: one line when it starts and one when it ends,
        # not a traceback every half second (issue 14 item 10).
        failing = FailureRun("recording push outcomes", clock=self._clock, logger=log)
        while True:
            await self._have_results.wait()
            self._have_results.clear()
            try:
                await self._flush()
            except Exception as exc:
                failing.failed(exc)
                await asyncio.sleep(RECORD_RETRY_SECONDS)  # results are kept meanwhile
                self._have_results.set()
            else:
                failing.succeeded()

    async def _flush(self) -> None:
        batch, self._results = self._results, []
        if not batch:
            return
        now = self._clock.now_ms()
        # Stopping: no order key carries on (nothing would send it).
        until = None if self._stopping else now + int(self._cfg.lease_seconds * 1000)
        try:
            chained = await self._queue.record(
                batch, owner=self.owner, now_ms=now, lease_until_ms=until
            )
        except BaseException:
            self._results[:0] = batch
            raise
        wake = False
        for r in batch:
            if r.outcome == "retry" and r.next_attempt_ms is not None:
                due = self._retry_due_ms
                self._retry_due_ms = (
                    r.next_attempt_ms if due is None else min(due, r.next_attempt_ms)
                )
                wake = True  # the claim loop announces when it falls due
            elif r.outcome == "release":
                wake = True  # given back: it may be claimable at once
            self._held.pop(r.push_id, None)
            left = self._busy.get(r.endpoint, 0) - 1
            if left > 0:
                self._busy[r.endpoint] = left
            else:
                self._busy.pop(r.endpoint, None)
        for push in chained:
            if self._stopping:  # stop() came while recording: give it back
                self._held[push.id] = push.lease_until_ms
                self._busy[push.endpoint] = self._busy.get(push.endpoint, 0) + 1
                self._results.append(AttemptResult(push.id, push.endpoint, "release"))
                self._have_results.set()
            else:
                self._start(push)
        window, refill = self._cfg.per_endpoint_window, self._refill()
        if wake or any(window - self._busy.get(r.endpoint, 0) >= refill for r in batch):
            self._claims.wake()

    # ---- renewing --------------------------------------------------------------------
    async def _renew_loop(self) -> None:
        """Every third of a lease, extend the leases of the rows still held (sending, or
        waiting for a lane or for their outcome to be recorded). The lease can then be short,
        and a crashed worker's claims come back after it (issue 14 item 15)."""
        period = self._cfg.lease_seconds / 3
        failing = FailureRun("renewing push leases", clock=self._clock, logger=log)
        while True:
            await self._clock.sleep(period)
            if not self._held:
                continue
            now = self._clock.now_ms()
            until = now + int(self._cfg.lease_seconds * 1000)
            ids = list(self._held)
            try:
                await self._queue.renew(ids, owner=self.owner, lease_until_ms=until)
            except Exception as exc:  # the database is in trouble: the old leases stand
                failing.failed(exc)
                continue
            failing.succeeded()
            for push_id in ids:
                if push_id in self._held:  # not recorded meanwhile
                    self._held[push_id] = until

    async def _refresh_metrics(self) -> None:
        now = self._clock.now_ms()
        if now < self._next_metrics_ms:
            return
        self._next_metrics_ms = now + int(self._cfg.metrics_interval_seconds * 1000)
        await self._queue.refresh_gauges(now_ms=now)
