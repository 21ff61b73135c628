"""SIP INFO DTMF bodies."""

from __future__ import annotations

import pytest

from simgate.codecs.sip.dtmf_info import key_of


@pytest.mark.parametrize(
    ("ctype", "body", "key"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", "5"),
        ("Application/DTMF-Relay; charset=x", b"signal= #\nDuration=100", "#"),
        ("application/dtmf-relay", b"Signal=11\r\n", "#"),
        ("application/dtmf-relay", b"Signal=10\r\n", "*"),
        ("application/dtmf", b"7", "7"),
        ("application/dtmf", b"x", ""),
        ("application/dtmf-relay", b"Duration=160\r\n", ""),
        ("text/plain", b"5", ""),
    ],
)
def test_keys(ctype: str, body: bytes, key: str) -> None:
    assert key_of(ctype, body) == key
