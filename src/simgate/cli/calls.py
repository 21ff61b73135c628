"""``simgate calls list``: the newest voice calls, for operators (issue #8)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from simgate.cli.common import add_columns, console, esc, fail, with_services
from simgate.domain.calls import CallRecord
from simgate.domain.money import format_amount
from simgate.services.container import Services

calls_app = typer.Typer(help="Voice calls.", no_args_is_help=True)


def _ts(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S")


def _row(c: CallRecord) -> list[str]:
    return [
        str(c.id),
        c.callee,
        c.state.name,
        "" if c.sip_code is None else str(c.sip_code),
        c.line or "",
        _ts(c.call_ms),
        _ts(c.answer_ms),
        _ts(c.hangup_ms),
        f"{c.call_duration_s}/{c.charged_duration_s}",
        c.feedback_value,
        f"{format_amount(c.cost_micros)} USD",
        str(c.recalls_done),
    ]


@calls_app.command("list")
def calls_list(
    account: Annotated[str | None, typer.Option(help="Account name or id.")] = None,
    limit: int = 20,
) -> None:
    """The newest calls (any state), times in UTC."""
    if limit < 1:
        fail("--limit must be at least 1")

    async def action(s: Services) -> list[list[str]]:
        return [_row(c) for c in await s.listings.calls(account=account or None, limit=limit)]

    rows = with_services(action)
    table = Table(title=f"newest {limit} calls")
    columns = (
        "voiceId",
        "callee",
        "state",
        "SIP",
        "line",
        "called",
        "answered",
        "hung up",
        "talk/charged s",
        "DTMF",
        "cost",
        "redials",
    )
    add_columns(table, columns, rows)
    for row in rows:
        table.add_row(*(esc(cell) for cell in row))
    console.print(table)
