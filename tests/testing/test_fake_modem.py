"""The FakeModem's own answers, fed bytes directly (no transport)."""

from __future__ import annotations

import asyncio

from simgate.codecs import tpdu
from simgate.codecs.segments import Encoding
from simgate.testing.fake_modem import FakeModem


def wired() -> tuple[FakeModem, bytearray]:
    m = FakeModem()
    out = bytearray()
    m._write = out.extend
    return m, out


def test_identity_and_pin() -> None:
    m, out = wired()
    m.wrong_pin("1234")
    m.receive(b'AT+CPIN?\rAT+CIMI\rAT+CPIN="0000"\rAT+CPIN="1234"\rAT+CIMI\r')
    text = out.decode()
    assert "+CPIN: SIM PIN" in text
    assert text.count("+CME ERROR: 11") == 1  # CIMI before the PIN
    assert "+CME ERROR: 16" in text  # wrong PIN
    assert text.rstrip().endswith(f"{m.imsi}\r\n\r\nOK")


async def test_cmgs_answers_mr_and_reports_stored() -> None:
    m, out = wired()
    m.behaviour.reports = "stored"
    (part,) = tpdu.submit_parts("hi", Encoding.GSM7, recipient="+491701", ref=0, srr=True, vp=None)
    m.receive(f"AT+CMGS={part.length}\r".encode())
    assert out.endswith(b"> ")
    m.receive(part.pdu.hex().encode() + b"\x1a")
    await asyncio.sleep(0.01)
    text = out.decode()
    assert "+CMGS: 0" in text
    assert '+CDSI: "SM",0' in text
    out.clear()
    m.receive(b"AT+CMGR=0\r")
    pdu_hex = out.decode().split("\r\n")[3]
    report = tpdu.decode_status_report(bytes.fromhex(pdu_hex))
    assert (report.mr, report.recipient, report.status) == (0, "+491701", 0)
    assert m.submits == [part.pdu.hex()]


async def test_held_reports_come_on_release() -> None:
    m, out = wired()
    m.behaviour.reports = "stored"
    m.holds_reports()
    (part,) = tpdu.submit_parts("hi", Encoding.GSM7, recipient="+491701", ref=0, srr=True, vp=None)
    for _ in range(2):
        m.receive(f"AT+CMGS={part.length}\r".encode() + part.pdu.hex().encode() + b"\x1a")
        await asyncio.sleep(0.01)
    assert out.decode().count("+CMGS:") == 2
    assert "+CDSI" not in out.decode()
    assert not m._store
    m.release_reports()
    assert out.decode().count("+CDSI:") == 2
    assert sorted(m._store) == [0, 1]
    m.release_reports()  # nothing held any more
    assert out.decode().count("+CDSI:") == 2


async def test_cms_errors_then_answers() -> None:
    m, out = wired()
    m.cms_errors(500, times=1)
    (part,) = tpdu.submit_parts("a", Encoding.GSM7, recipient="1", ref=0, srr=False, vp=None)
    for _ in range(2):
        m.receive(f"AT+CMGS={part.length}\r".encode() + part.pdu.hex().encode() + b"\x1a")
        await asyncio.sleep(0.01)
    text = out.decode()
    assert text.index("+CMS ERROR: 500") < text.index("+CMGS: 0")


def test_silent_and_ussd_ucs2() -> None:
    m, out = wired()
    m.behaviour.ussd_ucs2 = True
    m.receive(b'AT+CUSD=1,"*100#",15\r')
    assert ",72" in out.decode()
    m.stops_answering()
    out.clear()
    m.receive(b"AT\r")
    assert out == b""
