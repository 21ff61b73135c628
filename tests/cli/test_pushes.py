"""``simgate pushes list|show|retry|purge|stats`` in-process (typer's CliRunner)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from simgate.domain.pushes import AttemptResult
from simgate.runtime import Runtime
from simgate.services.outbox import PushOutbox
from simgate.settings import load_settings
from tests.push.conftest import PortPush, PushRig
from tests.support.cli import Cli, error, ok, row


async def _seed(data: Path) -> list[int]:
    """Three pushes: one pending, one failed (404), one dead."""
    settings = load_settings(None, overrides={"data_dir": str(data), "demo": {"create": False}})
    rt = Runtime(settings, role="admin")
    sv = await rt.open()
    try:
        port_push = PortPush()
        port_push.urls["a"] = "http://127.0.0.1:9/hook"
        assert rt.events is not None
        rt.events.subscribe(PushOutbox(store=rt.store, formats=[port_push], clock=rt.clock))
        rig = PushRig(rt, rt.clock, port_push)  # type: ignore[arg-type]
        for port in range(3):
            await rig.plan("a", port)
        now = rt.clock.now_ms()
        ids = sorted(
            c.id
            for c in await sv.pushes.queue.claim(
                owner="w", now_ms=now, lease_until_ms=now + 60_000, limit=10, window=10, busy={}
            )
        )
        results = [
            AttemptResult(ids[1], "e", "failed", 404, "HTTP 404"),
            AttemptResult(ids[2], "e", "dead", 503, "HTTP 503"),
            AttemptResult(ids[0], "e", "release"),
        ]
        await sv.pushes.queue.record(results, owner="w", now_ms=now)
        return ids
    finally:
        await rt.close()


def test_pushes_commands(cli: Cli, tmp_path: Path) -> None:
    ids = asyncio.run(_seed(tmp_path / "data"))
    out = ok(cli("pushes", "list"))
    assert row(out, str(ids[0]))[3] == "pending"
    assert row(out, str(ids[1]))[3] == "failed"
    assert row(out, str(ids[1]))[6] == "404"
    assert row(out, str(ids[2]))[3] == "dead"
    dead = ok(cli("pushes", "list", "--dead"))
    assert row(dead, str(ids[2]))[2] == "http://127.0.0.1:9"
    assert str(ids[0]) not in [
        line.split("│")[1].strip() for line in dead.splitlines() if "│" in line
    ]

    shown = ok(cli("pushes", "show", str(ids[1])))
    assert "POST http://127.0.0.1:9/hook" in shown
    assert "msg_" in shown
    assert "HTTP 404" in shown
    error(cli("pushes", "show", "999999"), "no push 999999")
    error(cli("pushes", "list", "--state", "lost"), "unknown push state 'lost'")

    assert "1 push(es) queued again" in ok(cli("pushes", "retry", "--dead"))
    assert row(ok(cli("pushes", "list")), str(ids[2]))[3] == "pending"
    assert "1 push(es) purged" in ok(
        cli("pushes", "purge", "--failed", "--keep-delivered", "--older-than-days", "0")
    )
    stats = ok(cli("pushes", "stats"))
    assert "pending 2" in stats
    assert row(stats, "http://127.0.0.1:9")[1] == "2"
