"""``simgate fx set|list|delete``: exchange rates for accounts quoted in another currency.

Voice prices are in USD; a record of an account in EUR also shows ``quoteExchange``,
``settleRate`` and ``settlePay`` (spec §1.14), computed with the rate set here. The rate is
units of the currency per 1 USD (``simgate fx set EUR 0.938``: 1 USD = 0.938 EUR).
"""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.table import Table

from simgate.cli.common import console, esc, with_services
from simgate.domain.money import format_amount

fx_app = typer.Typer(help="Exchange rates: units of a currency per 1 USD.", no_args_is_help=True)


@fx_app.command("set")
def fx_set(currency: str, per_usd: str) -> None:
    """Set how many units of CURRENCY one US dollar buys (e.g. EUR 0.938)."""
    rate = with_services(lambda s: s.fx.set_rate(currency, per_usd))
    console.print(
        f"1 USD = {format_amount(rate.per_usd_micros)} {esc(rate.currency)}", highlight=False
    )


@fx_app.command("list")
def fx_list() -> None:
    table = Table(title="exchange rates (per 1 USD)")
    for column in ("currency", "per USD", "updated (UTC)"):
        table.add_column(column)
    for rate in with_services(lambda s: s.fx.list_rates()):
        when = datetime.fromtimestamp(rate.updated_ms / 1000, tz=UTC)
        table.add_row(
            esc(rate.currency),
            format_amount(rate.per_usd_micros),
            when.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)


@fx_app.command("delete")
def fx_delete(currency: str) -> None:
    with_services(lambda s: s.fx.delete_rate(currency))
    console.print(f"{esc(currency.strip())} deleted", highlight=False)
