"""``simgate pushes list|show|retry|purge|stats``: the push outbox for operators."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from simgate.cli.common import add_columns, console, esc, with_services
from simgate.services.container import Services
from simgate.services.pushes import PushStats, PushView

pushes_app = typer.Typer(
    help="Pushes to customers' URLs: outbox, dead letters, retries.", no_args_is_help=True
)


def _ts(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _outcome(p: PushView) -> str:
    if p.last_status is not None:
        return str(p.last_status)
    return (p.last_error or "")[:40]


@pushes_app.command("list")
def pushes_list(
    dead: Annotated[bool, typer.Option("--dead", help="Only dead-lettered pushes.")] = False,
    state: Annotated[
        list[str] | None, typer.Option(help="pending, delivered, failed or dead; repeat.")
    ] = None,
    endpoint: Annotated[str | None, typer.Option(help="scheme://host:port")] = None,
    kind: Annotated[str | None, typer.Option(help="e.g. itnio.report")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """Newest pushes first."""
    states = ["dead"] if dead else list(state or [])
    rows = with_services(
        lambda s: s.pushes.list(states=states, endpoint=endpoint, kind=kind, limit=limit)
    )
    table = Table(title="dead-lettered pushes" if dead else "pushes")
    cells: list[list[str]] = []
    for p in rows:
        state_text = p.state + (" (sending)" if p.in_flight else "")
        when = _ts(p.done_ms) if p.done_ms else _ts(p.next_attempt_ms)
        first = [str(p.id), p.kind, p.endpoint, state_text, str(p.attempts), when]
        cells.append([*first, _outcome(p), _ts(p.created_ms)])
    columns = ("id", "kind", "endpoint", "state", "tries", "next / done", "last", "created")
    add_columns(table, columns, cells)
    for r in cells:
        table.add_row(*(esc(c) for c in r))
    console.print(table)


@pushes_app.command("show")
def pushes_show(
    ref: Annotated[str, typer.Argument(help="Push id or webhook id (msg_...).")],
) -> None:
    p = with_services(lambda s: s.pushes.get(ref))
    table = Table(title=f"push {p.id}", show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    body = p.body or b""
    preview = body[:2000].decode("utf-8", "replace") + (" ..." if len(body) > 2000 else "")
    fields = [
        ("webhook-id", p.uid),
        ("kind", p.kind),
        ("state", p.state + (" (being sent)" if p.in_flight else "")),
        ("request", f"{p.method} {p.url}"),
        ("headers", "\n".join(f"{k}: {v}" for k, v in p.headers.items())),
        ("body", preview),
        ("signed", "yes" if p.signed else "no"),
        ("order key", p.order_key or ""),
        ("attempts", str(p.attempts)),
        ("next attempt", _ts(p.next_attempt_ms) if p.state == "pending" else ""),
        ("last status", "" if p.last_status is None else str(p.last_status)),
        ("last error", p.last_error or ""),
        ("created", _ts(p.created_ms)),
        ("finished", _ts(p.done_ms)),
    ]
    for k, v in fields:
        table.add_row(k, esc(v))
    console.print(table, highlight=False)


@pushes_app.command("retry")
def pushes_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Push ids (default: all).")] = None,
    dead: Annotated[bool, typer.Option("--dead", help="Dead-lettered ones.")] = False,
    failed: Annotated[bool, typer.Option("--failed", help="Permanently failed ones.")] = False,
    endpoint: Annotated[str | None, typer.Option(help="scheme://host:port")] = None,
) -> None:
    """Send failed or dead pushes again, with a fresh retry period."""
    states = [s for s, on in (("dead", dead), ("failed", failed)) if on]
    n = with_services(
        lambda s: s.pushes.retry(ids=list(ids or []), states=states, endpoint=endpoint)
    )
    console.print(f"{n} push(es) queued again")


@pushes_app.command("purge")
def pushes_purge(
    older_than_days: Annotated[float, typer.Option("--older-than-days", min=0)] = 7.0,
    delivered: Annotated[bool, typer.Option("--delivered/--keep-delivered")] = True,
    failed: Annotated[bool, typer.Option("--failed", help="Also failed ones.")] = False,
    dead: Annotated[bool, typer.Option("--dead", help="Also dead-lettered ones.")] = False,
) -> None:
    """Delete finished pushes (never pending ones) older than the given age."""
    states = [s for s, on in (("delivered", delivered), ("failed", failed), ("dead", dead)) if on]
    n = with_services(
        lambda s: s.pushes.purge(states=states, older_than_seconds=older_than_days * 86400)
    )
    console.print(f"{n} push(es) purged")


@pushes_app.command("stats")
def pushes_stats() -> None:
    """Counts by state and pending pushes per endpoint."""

    async def both(s: Services) -> tuple[PushStats, dict[str, int]]:
        return await s.pushes.refresh_metrics(), await s.pushes.pending_by_endpoint()

    st, by_ep = with_services(both)
    console.print(
        f"pending {st.pending} (sending {st.in_flight}), delivered {st.delivered}, "
        f"failed {st.failed}, dead {st.dead}, oldest pending {_ts(st.oldest_pending_ms) or '-'}"
    )
    table = Table(title="pending per endpoint")
    table.add_column("endpoint")
    table.add_column("pending", justify="right")
    for ep, n in sorted(by_ep.items(), key=lambda kv: -kv[1]):
        table.add_row(esc(ep), str(n))
    console.print(table)
