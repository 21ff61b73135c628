"""+CMS ERROR codes (3GPP TS 27.005 §3.2.5) as retryable or permanent for the message.

0..127 are the network's RP/CP causes (TS 24.011 Annex E), 128..255 TP-FCS values
(TS 23.040 §9.2.3.22), 300.. the modem's own. Permanent: the message itself cannot go
(unknown or barred destination, a PDU the network refuses); sending it again would fail the
same way. Everything else (a busy or failing network, the SIM busy, ``500 unknown error``)
is the port's trouble: the message is retried, and the port counts a failure.
"""

from __future__ import annotations

__all__ = ["is_permanent"]

_PERMANENT = frozenset(
    {
        1,  # unassigned (unallocated) number
        8,  # operator determined barring
        10,  # call barred
        21,  # short message transfer rejected
        29,  # facility rejected
        30,  # unknown subscriber
        50,  # requested facility not subscribed
        96,  # invalid mandatory information
        0xC3,  # invalid SME address
        0xC4,  # SME barred
        0xC5,  # SM rejected: duplicate SM
        304,  # invalid PDU mode parameter
        305,  # invalid text mode parameter
    }
)


def is_permanent(code: int | None) -> bool:
    """True when +CMS ERROR ``code`` refuses the message for good."""
    if code is None:
        return False
    # 0x80-0xBF: TP-PID, TP-DCS and TP-Command errors: the PDU is wrong, not the network.
    return code in _PERMANENT or 0x80 <= code <= 0xBF
