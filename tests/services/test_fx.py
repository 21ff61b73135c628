"""The exchange-rate service (services/fx.py): checks, then the stored rates."""

from __future__ import annotations

import pytest

from simgate.errors import InvalidInput, NotFound
from simgate.services.container import Services
from simgate.services.fx import check_currency, parse_rate
from simgate.testing.clock import FakeClock


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("eur", "3 upper-case letters"),
        ("EURO", "3 upper-case letters"),
        ("", "3 upper-case letters"),
        ("USD", "USD is the base currency"),
    ],
)
def test_bad_currencies(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        check_currency(text)


def test_currency_is_trimmed() -> None:
    assert check_currency(" EUR ") == "EUR"


@pytest.mark.parametrize(
    ("text", "fragment"), [("0", "must be positive"), ("-1", "must be positive"), ("x", "amount")]
)
def test_bad_rates(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        parse_rate(text)


def test_rate_in_micros() -> None:
    assert parse_rate("0.938") == 938_000


async def test_set_list_delete(services: Services, clock: FakeClock) -> None:
    fx = services.fx
    eur = await fx.set_rate("EUR", "0.938")
    assert (eur.currency, eur.per_usd_micros, eur.updated_ms) == ("EUR", 938_000, clock.now_ms())
    await fx.set_rate("CNY", "7.1")
    await clock.advance(1)
    await fx.set_rate("EUR", "0.94")  # replaces
    rates = await fx.list_rates()
    assert [(r.currency, r.per_usd_micros) for r in rates] == [("CNY", 7_100_000), ("EUR", 940_000)]
    assert rates[1].updated_ms == clock.now_ms()
    await fx.delete_rate("EUR")
    assert [r.currency for r in await fx.list_rates()] == ["CNY"]
    with pytest.raises(NotFound, match="no exchange rate for EUR"):
        await fx.delete_rate("EUR")
    with pytest.raises(InvalidInput):
        await fx.delete_rate("USD")
