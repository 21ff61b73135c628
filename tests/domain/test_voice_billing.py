"""Voice billing (issue #8, spec §1.14): billing periods, costs, currency conversion.

The formulas are written out in README "Voice billing" and domain/billing.py.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simgate.domain.billing import (
    BillPeriod,
    convert,
    first_step_cost,
    per_minute_cost,
    voice_charge,
)
from simgate.domain.calls import CallResult


@pytest.mark.parametrize(
    ("period", "duration", "charged"),
    [
        ("20+20", 0, 0),  # nothing to bill
        ("20+20", 1, 20),  # issue #8: 1 s at 20+20 → 20
        ("20+20", 20, 20),
        ("20+20", 21, 40),  # issue #8: 21 s → 40
        ("20+20", 40, 40),
        ("20+20", 41, 60),
        ("60+60", 1, 60),
        ("60+60", 60, 60),
        ("60+60", 61, 120),  # issue #8: 61 s at 60+60 → 120
        ("6+6", 7, 12),
        ("6+6", 13, 18),
        ("1+1", 37, 37),
        ("30+6", 31, 36),  # initial and increment may differ
        ("30+6", 37, 42),
    ],
)
def test_charged_seconds_table(period: str, duration: int, charged: int) -> None:
    assert BillPeriod.parse(period).charged_seconds(duration) == charged


@pytest.mark.parametrize(
    "text", ["", "20", "20+", "+20", "0+20", "20+0", "20-20", "a+b", "1+99999"]
)
def test_bad_billing_periods_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="billing period"):
        BillPeriod.parse(text)


@given(
    initial=st.integers(1, 120),
    increment=st.integers(1, 120),
    duration=st.integers(1, 100_000),
)
def test_charged_seconds_properties(initial: int, increment: int, duration: int) -> None:
    charged = BillPeriod(initial, increment).charged_seconds(duration)
    assert charged >= duration  # never bills less than was talked
    assert charged >= initial
    assert (charged - initial) % increment == 0  # always on a step boundary
    assert charged - duration < max(initial, increment)  # and the smallest such boundary


def test_unanswered_call_costs_nothing() -> None:
    c = voice_charge(
        answered=False,
        duration_s=0,
        rate_micros=1_200_000,
        bill_period="20+20",
        currency="USD",
        quote_exchange_micros=None,
    )
    assert (c.charged_duration_s, c.base_cost_micros, c.cost_micros, c.debit_micros) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("rate", "period", "duration", "charged", "cost"),
    [
        ("1.2", "20+20", 1, 20, "0.4"),  # 1.2 USD/min x 20 s
        ("1.2", "20+20", 21, 40, "0.8"),
        ("0.05", "60+60", 61, 120, "0.1"),
        ("0.07", "6+6", 7, 12, "0.014"),
        ("0.01", "1+1", 1, 1, "0.000167"),  # 0.0001666.. rounds half up to 6 places
        ("0.000001", "1+1", 29, 29, "0"),  # 0.00000048 rounds down
        ("0.000001", "1+1", 30, 30, "0.000001"),  # 0.0000005 rounds half up
    ],
)
def test_usd_costs(rate: str, period: str, duration: int, charged: int, cost: str) -> None:
    rate_micros = int(Decimal(rate) * 1_000_000)
    c = voice_charge(
        answered=True,
        duration_s=duration,
        rate_micros=rate_micros,
        bill_period=period,
        currency="USD",
        quote_exchange_micros=None,
    )
    assert c.charged_duration_s == charged
    assert c.base_cost_micros == c.cost_micros == int(Decimal(cost) * 1_000_000)
    assert c.debit_micros == c.cost_micros
    assert c.settle_pay_micros is None
    assert c.quote_exchange_micros is None


def test_eur_account_is_debited_the_settled_amount() -> None:
    # 1.2 USD/min, 21 s at 20+20 → 40 s → 0.8 USD; at 0.938 EUR per USD → 0.7504 EUR.
    c = voice_charge(
        answered=True,
        duration_s=21,
        rate_micros=1_200_000,
        bill_period="20+20",
        currency="EUR",
        quote_exchange_micros=938_000,
    )
    assert c.cost_micros == 800_000
    assert c.quote_exchange_micros == 938_000
    assert c.settle_rate_micros == 1_125_600  # 1.2 x 0.938
    assert c.settle_pay_micros == 750_400  # 0.8 x 0.938
    assert c.debit_micros == 750_400


def test_conversion_rounds_half_up_from_the_rounded_cost() -> None:
    # settlePay is computed from the cost as shown (6 places), so a client can recompute it.
    assert convert(1, 500_000) == 1  # 0.0000005 → half up
    assert convert(1, 499_999) == 0
    assert convert(3, 1_500_000) == 5  # 4.5 micros → 5


@given(
    rate=st.integers(0, 10_000_000),
    seconds=st.integers(0, 7200),
    fx=st.integers(1, 100_000_000),
)
def test_conversion_matches_exact_decimal_arithmetic(rate: int, seconds: int, fx: int) -> None:
    base = per_minute_cost(rate, seconds)
    exact = (Decimal(rate) * seconds / 60).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert base == int(exact)
    settled = convert(base, fx)
    assert settled == int((Decimal(base) * fx / 1_000_000).quantize(Decimal(1), ROUND_HALF_UP))


def test_first_step_cost_is_the_balance_check_amount() -> None:
    assert first_step_cost(1_200_000, "20+20", None) == 400_000
    assert first_step_cost(1_200_000, "20+20", 938_000) == 375_200
    assert first_step_cost(60_000, "60+60", None) == 60_000


def _result(answer: int | None, hangup: int, code: int = 200) -> CallResult:
    return CallResult(1, "v", 0, 0, answer, hangup, code, "")


@pytest.mark.parametrize(
    ("answer", "hangup", "seconds"),
    [
        (None, 5000, 0),  # unanswered
        (1000, 1000, 0),  # answered and gone at once
        (1000, 1001, 1),  # any answered call that lasted counts 1 s at least
        (1000, 2000, 1),
        (1000, 2003, 1),  # a few ms of signalling after a 1 s limit is not a second more
        (1000, 2499, 1),
        (1000, 2500, 2),  # half up
        (1000, 61_700, 61),
    ],
)
def test_talk_time_is_whole_seconds_to_the_nearest(
    answer: int | None, hangup: int, seconds: int
) -> None:
    assert _result(answer, hangup).duration_s == seconds
