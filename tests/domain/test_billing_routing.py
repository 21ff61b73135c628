"""Rates and routes: the longest matching prefix wins, the empty prefix is the catch-all."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simgate.domain.billing import Rate, RateTable, sms_charge
from simgate.domain.routing import route_for
from simgate.settings import Route

RATES = [
    Rate("sms", "", 10_000, "USD"),
    Rate("sms", "86", 20_000, "USD"),
    Rate("sms", "8613", 30_000, "USD"),
    Rate("sms", "861380", 40_000, "USD"),
    Rate("voice", "86", 50_000, "USD", "60+60"),
]


@pytest.mark.parametrize(
    ("number", "price"),
    [
        ("8613800138000", 40_000),
        ("8613900000000", 30_000),
        ("8615000000000", 20_000),
        ("12025550123", 10_000),
        ("86", 20_000),
        ("8", 10_000),
    ],
)
def test_sms_longest_prefix(number: str, price: int) -> None:
    rate = RateTable(RATES).lookup("sms", number)
    assert rate is not None
    assert rate.price_micros == price


def test_kinds_are_separate() -> None:
    table = RateTable(RATES)
    voice = table.lookup("voice", "8613800138000")
    assert voice is not None
    assert voice.price_micros == 50_000
    assert voice.bill_period == "60+60"
    assert table.lookup("voice", "12025550123") is None  # no voice catch-all
    assert table.lookup("fax", "8613800138000") is None
    assert RateTable([]).lookup("sms", "8613800138000") is None


def test_without_catch_all_unmatched_is_none() -> None:
    table = RateTable([Rate("sms", "44", 1, "USD")])
    assert table.lookup("sms", "8613800138000") is None
    assert table.lookup("sms", "447700900123") == Rate("sms", "44", 1, "USD")


prefixes = st.lists(st.from_regex(r"[0-9]{0,6}", fullmatch=True), min_size=1, max_size=12)


@given(prefixes, st.from_regex(r"[0-9]{1,12}", fullmatch=True))
def test_lookup_agrees_with_brute_force(pfx: list[str], number: str) -> None:
    rates = [Rate("sms", p, i, "USD") for i, p in enumerate(pfx)]
    by_prefix = {r.prefix: r for r in rates}  # later rows replace earlier ones, as upserts do
    matching = [p for p in by_prefix if number.startswith(p)]
    expected = by_prefix[max(matching, key=len)] if matching else None
    assert RateTable(rates).lookup("sms", number) == expected


def test_sms_charge_is_per_part() -> None:
    assert sms_charge(Rate("sms", "", 10_000, "USD"), 3) == 30_000


@dataclass(frozen=True)
class R:
    prefix: str
    lines: tuple[str, ...]


def test_route_longest_prefix() -> None:
    routes = [R("", ("sim",)), R("86", ("a", "b")), R("861", ("c",)), R("44", ("d",))]
    assert route_for(routes, "8613800138000") == R("861", ("c",))
    assert route_for(routes, "8623800138000") == R("86", ("a", "b"))
    assert route_for(routes, "12025550123") == R("", ("sim",))
    assert route_for([R("44", ("d",))], "12025550123") is None
    assert route_for([], "12025550123") is None


def test_route_works_with_settings_routes() -> None:
    routes = (Route(prefix="", lines=("sim",)), Route(prefix="1", lines=("us", "sim")))
    chosen = route_for(routes, "12025550123")
    assert chosen is not None
    assert chosen.lines == ("us", "sim")


@given(prefixes, st.from_regex(r"[0-9]{1,12}", fullmatch=True))
def test_route_agrees_with_brute_force(pfx: list[str], number: str) -> None:
    routes = [R(p, (str(i),)) for i, p in enumerate(pfx)]
    chosen = route_for(routes, number)
    matching = [r for r in routes if number.startswith(r.prefix)]
    if not matching:
        assert chosen is None
    else:
        assert chosen is not None
        assert number.startswith(chosen.prefix)
        assert len(chosen.prefix) == max(len(r.prefix) for r in matching)
