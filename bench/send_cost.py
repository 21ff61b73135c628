"""Where a one-number send's CPU goes, in one process and without sockets (issue 15).

    scripts/bench --only send_cost [--backend sqlite|pg]

``bench/http_send.py`` measures sends through ``wrk`` and uvicorn, where the machine's noise
(another process's load on 2 cores) moves req/s by a quarter from one minute to the next. This
one calls the ASGI application and the send service straight from 32 (or fewer) tasks of one
event loop and reads the process's own CPU time per request, so a change to the send path
shows in the rows that it touches. Rows, each CPU per request:

- ``app, refused before the DB``: the OpenVox ``/sms/send`` request of ``http_send``'s ceiling
  (``"mode":2``), the baseline of the column "vs ceiling": what a send costs beyond it is the
  database work and the service;
- ``app, 1 number``: the same request sent (``"mode":0``);
- ``service, N tasks``: ``SendService.send`` of one number from N concurrent tasks, no HTTP and
  no dialect: with N tasks the accept batches (group commit, services/accept_writer.py) hold
  up to N requests, so the rows at 32 and at 1 task split a send's CPU into what each send
  costs and what each commit costs (its BEGIN, charge, COMMIT, the hand-off to the writer's
  thread and back): ``per commit ~= (cost at 1 - cost at 32) / (1 - 1/32)``, assuming batches
  of 32 at 32 tasks (an upper bound on the batch: the per-commit figure is then a lower bound);
- the same ``service`` rows with ``commit = "os"`` (README "When a write counts as committed":
  no fsync, the COMMIT on the loop on SQLite): their difference to the ``disk`` rows is what
  the wait for the disk costs the process.

Measured by this module on 2026-12-05 (2 cores, two runs; CPU time is steadier than req/s
but still moves by a fifth between runs on that machine): on SQLite the ceiling request took
32-34 µs and a send 88-121 (2.6-3.8x); a commit ~260-300 µs of CPU with ``commit = "disk"``
and ~100-110 with ``"os"``, a send itself 34-41. On PostgreSQL a commit ~195-235 µs whatever
``commit`` says (the round trip to the server, not an fsync of the process's own). Under
``wrk`` at 32 connections an accept batch held ~8-10 sends (the requests the loop handles
during one commit's round trip), so the commit is a large part of a send's CPU: the note of
issue 15 (thirteenth stop) has the measurements behind this and what follows from them.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.common import GATEWAY_PASSWORD, GATEWAY_USER, Table, opened, scratch_url
from bench.http_send import server_settings
from simgate.domain.accounts import Account
from simgate.services.container import Services
from simgate.services.sending import Recipient, SendRequest
from simgate.settings import load_settings

TASKS = 32
SERVICE_TASKS = (TASKS, 8, 1)  # the first and the last split a send from a commit

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _cpu_s() -> float:
    # This process's own CPU to the microsecond (http_send.process_cpu_s reads another
    # process's from /proc, in clock ticks of 10 ms: too coarse for a --quick row).
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _post(app: Asgi, client: int, body: bytes) -> bytes:
    """One POST /sms/send through the ASGI application; the answer's body. Not httpx's
    ASGITransport (as bench/voice_query.py uses): its request and response objects would cost
    more CPU than the ~30 µs request being measured."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/sms/send",
        "raw_path": b"/sms/send",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 10_000 + client),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    sent = False
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:  # the application never asks twice for a complete body
            raise RuntimeError("body read twice")
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return b"".join(chunks)


async def _timed(
    work: Callable[[int, int], Awaitable[int]], tasks: int, each: int
) -> tuple[float, float, int]:
    """Run ``work(task, count)`` in ``tasks`` concurrent tasks; (req/s, CPU µs per request,
    requests that went wrong)."""
    await asyncio.gather(*(work(t, 20) for t in range(tasks)))  # warm: caches, id block
    cpu0, t0 = _cpu_s(), time.perf_counter()
    bad = sum(await asyncio.gather(*(work(t, each) for t in range(tasks))))
    seconds, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    done = tasks * each
    return done / seconds, cpu * 1e6 / done, bad


def _app_work(app: Asgi, mode: int) -> Callable[[int, int], Awaitable[int]]:
    expect = b'"code":200' if mode == 0 else b'"code":400'

    async def work(task: int, count: int) -> int:
        bad = 0
        for n in range(count):
            body = orjson.dumps(
                {
                    "username": GATEWAY_USER,
                    "password": GATEWAY_PASSWORD,
                    "dest_num": "8613800138000",
                    "msg": f"cost {task}-{n}-{time.monotonic_ns()}",
                    "mode": mode,
                }
            )
            if expect not in await _post(app, task, body):
                bad += 1
        return bad

    return work


def _service_work(sv: Services, account: Account) -> Callable[[int, int], Awaitable[int]]:
    async def work(task: int, count: int) -> int:
        bad = 0
        for n in range(count):
            outcome = await sv.sending.send(
                SendRequest(
                    account=account,
                    dialect="openvox",
                    text=f"cost {task}-{n}",
                    recipients=[Recipient("8613800138000")],
                    dial_as_given=True,
                )
            )
            bad += len(outcome.accepted) != 1
        return bad

    return work


async def _rows(backend: str, workdir: Path, commit: str, each: int) -> tuple[list[list[Any]], str]:
    """This commit mode's rows (the app rows on ``disk`` only) and its services rows' split."""
    async with scratch_url(backend, workdir) as url:
        # The port of the gateway's settings is never opened here: nothing listens.
        settings = load_settings(None, overrides=server_settings(workdir, url, 8080, commit))
        async with opened(settings, role="serve") as rt:
            sv = rt.services
            assert sv is not None
            account = await sv.accounts.create_account(name="cost", balance="100000000")
            await sv.accounts.create_user(
                account.id, username=GATEWAY_USER, password=GATEWAY_PASSWORD
            )
            rows: list[list[Any]] = []
            if commit == "disk":
                app: Asgi = rt.app()
                for name, mode in (("app, refused before the DB", 2), ("app, 1 number", 0)):
                    rps, cpu, bad = await _timed(_app_work(app, mode), TASKS, each)
                    rows.append([name, TASKS, rps, cpu, bad])
            work = _service_work(sv, account)
            per_task: dict[int, float] = {}
            for tasks in SERVICE_TASKS:
                # The same number of sends at every width: fewer tasks, more sends each.
                rps, cpu, bad = await _timed(work, tasks, each * TASKS // tasks // 4)
                rows.append([f"service, commit = {commit!r}", tasks, rps, cpu, bad])
                per_task[tasks] = cpu
            # Per commit and per send from the widest and the narrowest (module docstring).
            per_commit = (per_task[1] - per_task[TASKS]) / (1 - 1 / TASKS)
            per_send = per_task[TASKS] - per_commit / TASKS
            split = (
                f"commit = {commit!r}: ~{per_commit:.0f} µs per commit, ~{per_send:.0f} per send"
            )
            return rows, split


async def measure(backend: str, workdir: Path, each: int = 400) -> Table:
    rows, disk = await _rows(backend, workdir / "disk", "disk", each)
    more, os_ = await _rows(backend, workdir / "os", "os", each)
    rows += more
    ceiling = rows[0][3]
    out: list[Sequence[Any]] = [[*row[:4], row[3] / ceiling, row[4]] for row in rows]
    return Table(
        f"send_cost [{backend}]: CPU per request in one process, no sockets",
        ["row", "tasks", "req/s", "CPU µs/req", "vs ceiling (CPU)", "bad"],
        out,
        f"service rows split (batches of up to `tasks` sends): {disk}; {os_}",
    )
