"""Readings of +CPIN, +CREG, +CSQ, +COPS, +CRSM answers (TS 27.007, TS 51.011)."""

from __future__ import annotations

import pytest

from simgate.lines.modem.state import (
    ModemState,
    cops_operator,
    cpin_state,
    creg_state,
    csq_signal,
    iccid_of,
)


@pytest.mark.parametrize(
    ("answer", "cme", "state"),
    [
        ("READY", None, None),
        ("SIM PIN", None, "PIN_REQUIRE"),
        ("SIM PUK", None, "PUK_REQUIRE"),
        ("PH-NET PIN", None, "PIN_REQUIRE"),
        (None, 10, "NO_SIM"),
        (None, 13, "UNKNOWN"),
    ],
)
def test_cpin(answer: str | None, cme: int | None, state: str | None) -> None:
    assert cpin_state(answer, cme=cme) == state


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        ("0,1", "REGISTER_OK"),
        ('2,5,"1A2B","01C3"', "REGISTER_OK"),
        ("0,2", "SEARCHING_NETWORK"),
        ("0,3", "UNREGISTER"),
        ("0,0", "UNREGISTER"),
        ("0,4", "UNKNOWN"),
        (None, "UNKNOWN"),
    ],
)
def test_creg(answer: str | None, state: str) -> None:
    assert creg_state(answer) == state


def test_csq_cops_iccid() -> None:
    assert (csq_signal("20,99"), csq_signal("99,99"), csq_signal(None)) == (20, 0, 0)
    assert cops_operator('0,0,"T-Mobile D"') == "T-Mobile D"
    assert cops_operator("0") == ""
    assert iccid_of('144,0,"986840062143658709F1"') == "8986046012345678901"  # F-padded
    assert iccid_of('106,130,""') == ""  # sw1 0x6A: not found


def test_registered_only_when_register_ok() -> None:
    assert ModemState(reg="REGISTER_OK").registered
    assert not ModemState(reg="PIN_REQUIRE").registered
    assert ModemState().with_(signal=5).signal == 5
