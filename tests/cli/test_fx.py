"""``simgate fx``: exchange rates from the command line."""

from __future__ import annotations

from tests.support.cli import Cli, error, ok, row


def test_fx_set_list_delete(cli: Cli) -> None:
    assert ok(cli("fx", "set", "EUR", "0.938")).strip() == "1 USD = 0.938 EUR"
    ok(cli("fx", "set", "CNY", "7.1"))
    ok(cli("fx", "set", "EUR", "0.94"))  # replaces
    listing = ok(cli("fx", "list"))
    assert row(listing, "EUR")[:2] == ["EUR", "0.94"]
    assert row(listing, "CNY")[:2] == ["CNY", "7.1"]
    assert ok(cli("fx", "delete", "EUR")).strip() == "EUR deleted"
    assert "EUR" not in ok(cli("fx", "list"))
    error(cli("fx", "delete", "EUR"), "no exchange rate for EUR")


def test_fx_refuses_bad_input(cli: Cli) -> None:
    error(cli("fx", "set", "eur", "1"), "3 upper-case letters")
    error(cli("fx", "set", "EURO", "1"), "3 upper-case letters")
    error(cli("fx", "set", "USD", "1"), "USD is the base currency")
    error(cli("fx", "set", "EUR", "0"), "must be positive")
    error(cli("fx", "set", "EUR", "--", "-1"), "must be positive")
    error(cli("fx", "set", "EUR", "lots"), "not an amount")
    error(cli("fx", "delete", "USD"), "USD is the base currency")
