"""Simulated calls completed per second by one worker (issue #8).

    .venv/bin/python bench/voice_calls.py [--calls 20000] [--backend sqlite|pg|both]

One CallDispatcher drives the simulated voice line with zero ring and talk times (every call
answered, audio of zero length), so the number is the dispatcher's own cost per call: lease,
dial, events, record, bill, push planning included. Baseline in the same run: the store's
floor, the same lease + finish writes (one finish per leased batch) for the same number of
calls, with no line, no call tasks and no timers.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/voice_calls.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Table, bench_settings, opened, pg_reachable, scratch_url
from simgate.clock import SystemClock
from simgate.dispatch.calls import CallDispatcher
from simgate.domain.accounts import AppKind
from simgate.domain.billing import voice_charge
from simgate.domain.calls import (
    CallFinal,
    CallKind,
    CallOptions,
    CallResult,
    NewCall,
    Pricing,
)
from simgate.lines.sim_voice import SimVoiceLine
from simgate.runtime import Runtime
from simgate.settings import SimVoiceLineSettings

PRICING = Pricing(50_000, "60+60", "USD", None)
LINE = SimVoiceLineSettings(
    calls_per_second=1_000_000,
    max_concurrent=500,
    answer_ratio=1.0,
    busy_ratio=0.0,
    setup_seconds=(0.0, 0.0),
    ring_seconds=(0.0, 0.0),
    early_hangup_ratio=0.0,
    dtmf_ratio=0.0,
)


async def _queue(rt: Runtime, total: int) -> None:
    sv = rt.services
    assert sv is not None
    account = await sv.accounts.create_account(name="bench", balance="100000000")
    app = await sv.accounts.create_app(account.id, kind=AppKind.VOICE)
    job = functools.partial(
        rt.store.voice_files.put_audio, sha256="0" * 64, pcm=b"", duration_ms=0, now_ms=0
    )
    audio_id = await rt.store.db.write(job)
    now = rt.clock.now_ms()
    for first in range(0, total, 1000):
        n = min(1000, total - first)
        ids = await rt.store.new_ids(n, now)
        calls = [
            NewCall(
                i,
                account.id,
                app.id,
                CallKind.GROUP,
                f"86138{(first + k) % 100_000_000:08d}",
                audio_id,
                "1bench.wav",
                "China",
                CallOptions(),
                PRICING,
                now,
            )
            for k, i in enumerate(ids)
        ]
        await rt.store.db.write(functools.partial(rt.store.calls.insert, calls=calls))


async def _done(rt: Runtime) -> int:
    assert rt.services is not None
    async with rt.store.db.read() as conn:
        return await rt.store.calls.queue_depth(conn)


async def _dispatcher_run(backend: str, workdir: Path, total: int) -> float:
    async with scratch_url(backend, workdir) as url, opened(bench_settings(workdir, url)) as rt:
        sv = rt.services
        assert sv is not None
        await _queue(rt, total)
        clock = SystemClock()
        line = SimVoiceLine("sim-voice", LINE, clock)
        await line.start()
        d = CallDispatcher(
            calls=sv.calls,
            lines={"sim-voice": line},
            settings=rt.settings.voice.model_copy(
                update={"batch_size": 500, "idle_poll_seconds": 0.01}
            ),
            worker=rt.settings.worker,
            clock=clock,
            metrics=sv.metrics,
        )
        t0 = time.perf_counter()
        await d.start()
        while await _done(rt) > 0:  # noqa: ASYNC110 (the database is what we wait on)
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
        await d.stop()
        await line.stop()
        return elapsed


async def _floor_run(backend: str, workdir: Path, total: int) -> float:
    async with scratch_url(backend, workdir) as url, opened(bench_settings(workdir, url)) as rt:
        sv = rt.services
        assert sv is not None
        await _queue(rt, total)
        calls = sv.calls
        t0 = time.perf_counter()
        while True:
            now = rt.clock.now_ms()
            leased = await calls.lease(
                owner="floor", now_ms=now, lease_until_ms=now + 600_000, limit=500
            )
            if not leased:
                break
            finals = []
            for c in leased:
                result = CallResult(c.id, "floor", now, now, now, now, 200, "success")
                charge = voice_charge(
                    answered=True,
                    duration_s=0,
                    rate_micros=c.pricing.rate_micros,
                    bill_period=c.pricing.bill_period,
                    currency=c.pricing.currency,
                    quote_exchange_micros=None,
                )
                finals.append(CallFinal(result, charge))
            # One finish per leased batch: the least the store can do for these calls.
            await calls.finish(finals=finals, owner="floor", now_ms=now)
        return time.perf_counter() - t0


async def measure(backend: str, workdir: Path, total: int) -> Table:
    floor = await _floor_run(backend, workdir / "floor", total)
    real = await _dispatcher_run(backend, workdir / "dispatch", total)
    rows: list[Sequence[Any]] = [
        ["store floor: lease + finish, no line", total, floor, total / floor, 1.0],
        [
            "CallDispatcher + SimVoiceLine (answer, play, hang up, bill)",
            total,
            real,
            total / real,
            (total / real) / (total / floor),
        ],
    ]
    return Table(
        f"simulated calls completed per second, one worker [{backend}]",
        ["run", "calls", "seconds", "calls/s", "vs floor"],
        rows,
        note="zero ring/talk time: the dispatcher's cost per call, not a call's length",
    )


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--backend", choices=["sqlite", "pg", "both"], default="both")
    args = parser.parse_args(argv)
    backends = ["sqlite", "pg"] if args.backend == "both" else [args.backend]
    if "pg" in backends and not await pg_reachable():
        print("PostgreSQL is not reachable: skipping pg")
        backends.remove("pg")
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="simgate-bench-calls-") as tmp:
            print((await measure(backend, Path(tmp), args.calls)).render(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))
