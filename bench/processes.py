"""Process benchmarks: the long crash run (SQLite) and the scale run (PostgreSQL).

The same drivers as ``tests/process`` with bigger numbers:
- crash: ``simgate run`` SIGKILLed at 20 random points while dispatching 30 000 messages;
  the table counts what the journal and the database say (lost and twice must be 0);
- scale: 20 000 messages through ``simgate worker`` processes on one PostgreSQL database,
  two workers beside one worker (the baseline), both with two ``simgate serve`` processes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.process.runs import crash_run, scale_run

from bench.common import Table, scratch_url
from simgate.domain.messages import State

ONLY_ON = {"crash": ("sqlite",), "scale": ("pg",)}


async def crash(backend: str, workdir: Path, kills: int) -> Table:
    first, between = 10_000, 1_000
    run = await crash_run(workdir, seed=7, kills=kills, first=first, between=between)
    by_state = Counter(run.final.values())
    lost = len(set(run.accepted) - set(run.final))
    twice = sum(1 for n in run.submitted.values() if n > 1)
    unknown_twice = sum(
        1 for m, s in run.final.items() if s is State.UNKNOWN and run.submitted[m] > 1
    )
    rows: list[Sequence[Any]] = [
        ["SIGKILLs (seeded random points)", kills],
        ["kills that found work in flight", sum(1 for n in run.in_flight_at_kill if n)],
        ["messages accepted", len(run.accepted)],
        ["lost (accepted, not in the database)", lost],
        ["submitted twice (journal)", twice],
        ["UNKNOWN submitted twice", unknown_twice],
    ]
    rows += [[f"final {s.name}", by_state.get(s, 0)] for s in State if by_state.get(s, 0)]
    rows += [["seconds", run.seconds]]
    return Table(
        f"crash [{backend}]: `simgate run` killed {kills} times, then settled",
        ["what", "count"],
        rows,
        "must be: lost 0, submitted twice 0; UNKNOWN = killed between submit and record",
    )


async def scale(backend: str, workdir: Path, total: int) -> Table:
    rows: list[tuple[str, float, int, int, int]] = []
    for workers in (1, 2):
        wd = workdir / f"w{workers}"
        wd.mkdir()
        async with scratch_url(backend, wd) as url:
            run = await scale_run(wd, pg_url=url, total=total, workers=workers, apis=2)
        twice = sum(1 for n in run.submitted.values() if n > 1)
        missing = len(set(run.ids) - set(run.submitted))
        rate = total / run.seconds_to_delivered
        rows.append((f"{workers} worker(s), 2 serve", rate, len(run.lease_owners), twice, missing))
    base = rows[0][1]
    return Table(
        f"scale [{backend}]: {total:,} messages enqueued (batches of 1,000) until all DELIVERED",
        [
            "processes",
            "msgs/s",
            "ratio to 1 worker",
            "workers leasing",
            "submitted twice",
            "never submitted",
        ],
        [[r[0], r[1], r[1] / base, *r[2:]] for r in rows],
        "must be: submitted twice 0, never submitted 0; msgs/s include enqueueing",
    )
