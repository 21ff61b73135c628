"""A modem's SIM and network state from its answers (3GPP TS 27.007), pure.

``reg`` uses the Dinstar names (spec §2.8): POWER_OFF, NO_SIM, PIN_REQUIRE, PUK_REQUIRE,
UNREGISTER, SEARCHING_NETWORK, REGISTER_OK, UNKNOWN.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["ModemState", "cops_operator", "cpin_state", "creg_state", "csq_signal", "iccid_of"]

REGISTER_OK = "REGISTER_OK"


@dataclass(frozen=True, slots=True)
class ModemState:
    reg: str = "POWER_OFF"  # nothing heard from the modem yet
    imei: str = ""
    imsi: str = ""
    iccid: str = ""
    number: str = ""
    signal: int = 0  # 0..31 (+CSQ), 0 when unknown
    operator: str = ""

    @property
    def registered(self) -> bool:
        return self.reg == REGISTER_OK

    def with_(self, **changes: object) -> ModemState:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def cpin_state(answer: str | None, *, cme: int | None = None) -> str | None:
    """``+CPIN: <code>`` (TS 27.007 §8.3) → a reg name while the SIM is not ready, None when
    it is READY. A +CME ERROR 10 (SIM not inserted) is NO_SIM."""
    if cme == 10:
        return "NO_SIM"
    if answer is None:
        return "UNKNOWN"
    code = answer.strip().upper()
    if code == "READY":
        return None
    if "PUK" in code:
        return "PUK_REQUIRE"
    if "PIN" in code:
        return "PIN_REQUIRE"
    return "UNKNOWN"


def creg_state(answer: str | None) -> str:
    """``+CREG: <n>,<stat>[,...]`` (TS 27.007 §7.2) → reg name. stat 1 home, 5 roaming."""
    if answer is None:
        return "UNKNOWN"
    fields = [f.strip() for f in answer.split(",")]
    stat = fields[1] if len(fields) > 1 else fields[0]
    return {
        "0": "UNREGISTER",
        "1": REGISTER_OK,
        "2": "SEARCHING_NETWORK",
        "3": "UNREGISTER",  # registration denied
        "5": REGISTER_OK,
    }.get(stat, "UNKNOWN")


def csq_signal(answer: str | None) -> int:
    """``+CSQ: <rssi>,<ber>`` (TS 27.007 §8.5): rssi 0..31, 99 = unknown → 0."""
    if answer is None:
        return 0
    head = answer.split(",")[0].strip()
    rssi = int(head) if head.isdigit() else 99
    return rssi if rssi <= 31 else 0


def cops_operator(answer: str | None) -> str:
    """``+COPS: <mode>[,<format>,"<oper>"]`` (TS 27.007 §7.3) → the operator's name."""
    if answer is None or '"' not in answer:
        return ""
    return answer.split('"')[1]


def iccid_of(crsm: str | None) -> str:
    """``+CRSM: 144,0,"98..."`` (EF ICCID 2FE2 read by +CRSM=176,12258,...; TS 51.011
    §10.1.1): the digits come nibble-swapped, F-padded."""
    if crsm is None or '"' not in crsm:
        return ""
    fields = crsm.split(",")
    if fields[0].strip() not in ("144", "145"):  # sw1 0x90 / 0x91: normal ending
        return ""
    raw = crsm.split('"')[1]
    digits = "".join(raw[i + 1] + raw[i] for i in range(0, len(raw) - 1, 2))
    return digits.rstrip("Ff").upper()
