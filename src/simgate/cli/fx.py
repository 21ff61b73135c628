"""``simgate fx set|list|delete``: exchange rates for accounts quoted in another currency.

Voice prices are in USD; a record of an account in EUR also shows ``quoteExchange``,
``settleRate`` and ``settlePay`` (spec §1.14), computed with the rate set here. The rate is
units of the currency per 1 USD (``simgate fx set EUR 0.938``: 1 USD = 0.938 EUR).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

import typer
from rich.table import Table

from simgate.cli.common import console, fail, with_services
from simgate.domain.money import format_amount, parse_amount
from simgate.services.container import Services

fx_app = typer.Typer(help="Exchange rates: units of a currency per 1 USD.", no_args_is_help=True)

CURRENCY_RE = re.compile(r"[A-Z]{3}")


def _currency(text: str) -> str:
    code = text.strip()
    if not CURRENCY_RE.fullmatch(code):
        fail(f"currency must be 3 upper-case letters (ISO 4217), not {text!r}")
    if code == "USD":
        fail("USD is the base currency: its rate is always 1")
    return code


def _rate(text: str) -> int:
    try:
        micros = parse_amount(text)
    except ValueError as exc:
        fail(str(exc))
        raise AssertionError("unreachable") from None
    if micros <= 0:
        fail(f"the rate must be positive, not {text!r}")
    return micros


@fx_app.command("set")
def fx_set(currency: str, per_usd: str) -> None:
    """Set how many units of CURRENCY one US dollar buys (e.g. EUR 0.938)."""
    code, micros = _currency(currency), _rate(per_usd)

    async def action(s: Services) -> None:
        job = functools.partial(
            s.store.fx.set_rate, currency=code, per_usd_micros=micros, now_ms=s.clock.now_ms()
        )
        await s.store.db.write(job)

    with_services(action)
    console.print(f"1 USD = {format_amount(micros)} {code}", highlight=False)


@fx_app.command("list")
def fx_list() -> None:
    async def action(s: Services) -> list[tuple[str, int, int]]:
        async with s.store.db.read() as conn:
            return await s.store.fx.list_rates(conn)

    table = Table(title="exchange rates (per 1 USD)")
    for column in ("currency", "per USD", "updated (UTC)"):
        table.add_column(column)
    for code, micros, updated_ms in with_services(action):
        when = datetime.fromtimestamp(updated_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(code, format_amount(micros), when)
    console.print(table)


@fx_app.command("delete")
def fx_delete(currency: str) -> None:
    code = _currency(currency)

    async def action(s: Services) -> bool:
        return await s.store.db.write(functools.partial(s.store.fx.delete_rate, currency=code))

    if not with_services(action):
        fail(f"no exchange rate for {code}")
    console.print(f"{code} deleted", highlight=False)
