"""A scripted GSM modem (AT commands, PDU mode) over a pty or TCP, for tests and demos.

Named behaviours (set on ``FakeModem.behaviour`` at any time, or with the helpers)::

    FakeModem()                           answers everything, a report 0 ms after +CMGS
    modem.slow(seconds)                   +CMGS takes that long to answer
    modem.stops_answering()               swallows commands until the line is reopened
    modem.drops_line()                    closes the connection (TCP: unplugged, then back)
    modem.wrong_pin("0000")               the SIM wants PIN "0000" (PIN_REQUIRE until given)
    modem.no_network()                    +CREG: 0,2 (searching), +CMGS fails +CMS ERROR: 331
    modem.cms_errors(500, times=3)        the next 3 +CMGS answer +CMS ERROR: 500
    modem.holds_reports()                 reports wait (the network is slow) until
    modem.release_reports()               sends them as they would have come
    modem.loses_answers(times=1)          the next +CMGS goes out (TP-MR taken, report
                                          stored as for +CDSI) but the line drops before
                                          its answer: the host never learns the TP-MR
    behaviour.reports = "stored"          reports as +CDSI (read with +CMGR), not +CDS
    behaviour.report_first = True         the report comes before the +CMGS answer
    behaviour.huawei_noise = True         ^RSSI/^BOOT/^MODE chatter between answers
    behaviour.ussd_ucs2 = True            +CUSD replies in UCS-2 hex (DCS 72)
    behaviour.refuses_inline = True       +CNMI=2,2,... refused (older modems): stored only
    behaviour.phase2 = False              +CSMS=1 refused (no phase 2+: no +CNMA)
    modem.redelivers_unacked(after=0.5)   with +CSMS=1, a +CMT/+CDS not acknowledged by
                                          +CNMA within that long comes again (as the
                                          network retries), up to 3 times

It routes as the host set +CNMI (TS 27.005 §3.4.1): mt=1 stores SMS (+CMTI), ds=2 stores
reports (+CDSI); with +CSMS=1 (§3.2.1) each inline +CMT/+CDS awaits a +CNMA (§3.4.4),
oldest first (``unacked``); +CNMA with none awaited is +CMS ERROR: 340.

It keeps what it was sent (``submits``: each SMS-SUBMIT PDU as received, hex) so tests can
decode them with an independent decoder. ``deliver(...)`` hands an incoming SMS to the host
as +CMT (or +CMTI stored). Served on a pty (``await modem.open_pty()`` → the slave's path)
or on 127.0.0.1 (``await modem.serve_tcp()`` → ``socket://127.0.0.1:PORT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import tty
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from simgate.codecs import tpdu
from simgate.codecs.gsm7 import is_gsm7
from simgate.codecs.segments import Encoding

__all__ = ["Behaviour", "FakeModem"]

CTRL_Z = 0x1A
ESC = 0x1B


@dataclass
class Behaviour:
    cmgs_latency: float = 0.0
    report_delay: float = 0.0
    reports: str = "inline"  # "inline" (+CDS) or "stored" (+CDSI)
    report_first: bool = False
    report_status: int = 0  # TP-ST of the reports (0 delivered)
    silent: bool = False
    pin: str | None = None  # the SIM's PIN when one is required
    registered: bool = True
    cms_error: int | None = None
    cms_times: int = 0
    huawei_noise: bool = False
    ussd_ucs2: bool = False
    echo: bool = True  # V.250 §6.2.4: on after power-up, until ATE0
    refuses_inline: bool = False  # +CNMI=2,2,... refused: reports and SMS only stored
    lose_answers: int = 0  # +CMGS sent, then the line drops before the answer
    phase2: bool = True  # +CSMS=1 taken (TS 27.005 §3.2.1)
    redeliver_after: float | None = None  # an unacknowledged +CMT/+CDS comes again
    hold_reports: bool = False  # reports kept back until release_reports()


@dataclass
class FakeModem:
    imsi: str = "460001234567890"
    iccid: str = "89860012345678901234"
    imei: str = "356938035643809"
    number: str = "+15550001111"
    operator: str = "FAKENET"
    signal: int = 23
    behaviour: Behaviour = field(default_factory=Behaviour)
    submits: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    resets: int = 0
    _mr: int = 0
    _pin_ok: bool = False
    _store: dict[int, str] = field(default_factory=dict)  # index → "stat,,len\r\npdu"
    _buf: bytearray = field(default_factory=bytearray)
    _pdu_len: int | None = None
    _write: Callable[[bytes], None] | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _servers: list[asyncio.Server] = field(default_factory=list)
    _fds: list[int] = field(default_factory=list)
    _slaves: list[int] = field(default_factory=list)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _ref: int = 0
    unacked: list[str] = field(default_factory=list)  # inline deliveries awaiting +CNMA
    _csms: int = 0
    _cnmi: tuple[int, int] | None = None  # (mt, ds) as the host set them
    _held: list[tuple[int, str]] = field(default_factory=list)  # (TP-MR, recipient)

    # ---- named behaviours ----------------------------------------------------------
    def slow(self, seconds: float) -> None:
        self.behaviour.cmgs_latency = seconds

    def stops_answering(self) -> None:
        self.behaviour.silent = True

    def drops_line(self) -> None:
        for w in list(self._writers):
            w.close()
        self._writers.clear()
        self._write = None

    def wrong_pin(self, pin: str) -> None:
        self.behaviour.pin = pin
        self._pin_ok = False

    def no_network(self) -> None:
        self.behaviour.registered = False

    def cms_errors(self, code: int, *, times: int) -> None:
        self.behaviour.cms_error, self.behaviour.cms_times = code, times

    def loses_answers(self, *, times: int) -> None:
        self.behaviour.lose_answers = times

    def redelivers_unacked(self, *, after: float) -> None:
        self.behaviour.redeliver_after = after

    def holds_reports(self) -> None:
        self.behaviour.hold_reports = True

    def release_reports(self) -> None:
        """The held reports come now, in order (stored or inline as routed at this moment:
        with no host connected a stored one's +CDSI is heard by nobody)."""
        self.behaviour.hold_reports = False
        held, self._held = self._held, []
        for mr, recipient in held:
            self._report(mr, recipient)

    # ---- transports ----------------------------------------------------------------
    async def open_pty(self) -> str:
        master, slave = os.openpty()
        tty.setraw(slave)
        path = os.ttyname(slave)
        # Kept open (never read): with no slave open the master reads EIO in a busy loop.
        self._slaves.append(slave)
        self._fds.append(master)
        loop = asyncio.get_running_loop()

        def readable() -> None:
            try:
                data = os.read(master, 4096)
            except OSError:  # no slave open right now (the host closed it)
                return
            self._write = lambda b: _write_all(master, b)
            self.receive(data)

        loop.add_reader(master, readable)
        self._write = lambda b: _write_all(master, b)
        return path

    async def serve_tcp(self, port: int = 0) -> str:
        server = await asyncio.start_server(self._client, "127.0.0.1", port)
        self._servers.append(server)
        bound = server.sockets[0].getsockname()[1]
        return f"socket://127.0.0.1:{bound}"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        self._reopened()
        self._write = writer.write
        try:
            while data := await reader.read(4096):
                self._write = writer.write
                self.receive(data)
        except ConnectionError:
            pass
        finally:
            with contextlib.suppress(ValueError):
                self._writers.remove(writer)
            writer.close()

    def _reopened(self) -> None:
        """A new host connection: a hung modem came back (as a USB re-enumeration does)."""
        self.behaviour.silent = False
        self._buf.clear()
        self._pdu_len = None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        loop = asyncio.get_running_loop()
        for fd in self._fds:
            loop.remove_reader(fd)
            os.close(fd)
        self._fds.clear()
        for fd in self._slaves:
            os.close(fd)
        self._slaves.clear()
        for w in self._writers:
            w.close()
        for s in self._servers:
            s.close()
            await s.wait_closed()
        self._servers.clear()

    # ---- the modem -----------------------------------------------------------------
    def _out(self, text: str) -> None:
        if self._write is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self._write(text.encode("latin-1"))

    def _answer(self, *lines: str) -> None:
        self._out("".join(f"\r\n{line}\r\n" for line in lines))

    def receive(self, data: bytes) -> None:
        self._buf += data
        while True:
            if self._pdu_len is not None:
                end = self._buf.find(bytes((CTRL_Z,)))
                esc = self._buf.find(bytes((ESC,)))
                if esc >= 0 and (end < 0 or esc < end):
                    del self._buf[: esc + 1]
                    self._pdu_len = None
                    self._answer("OK")
                    continue
                if end < 0:
                    return
                pdu = self._buf[:end].decode("latin-1").strip()
                del self._buf[: end + 1]
                self._pdu_len = None
                self._spawn(self._cmgs(pdu))
                continue
            cut = self._buf.find(b"\r")
            if cut < 0:
                return
            line = self._buf[:cut].decode("latin-1").strip()
            del self._buf[: cut + 1]
            if line:
                self._command(line)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _command(self, line: str) -> None:
        line = line.lstrip("\x1b")  # ESC: a host cancelling a PDU it never finished
        if not line:
            return
        self.commands.append(line)
        b = self.behaviour
        if b.silent:
            return
        if b.echo:
            self._out(line + "\r")
        if b.huawei_noise:
            self._answer("^RSSI:14", "^MODE:5,4")
        up = line.upper()
        locked = b.pin is not None and not self._pin_ok
        if up in ("ATE0", "ATE1"):
            b.echo = up == "ATE1"
            self._answer("OK")
        elif up == "AT+CSCA?":  # the SMSC address stored in the SIM (TS 27.005 §3.3.1)
            self._answer('+CSCA: "+15550000000",145', "OK")
        elif up == "AT+CSCS?":
            self._answer('+CSCS: "GSM"', "OK")
        elif up == "AT+CSCS=?":
            self._answer('+CSCS: ("GSM","UCS2","IRA")', "OK")
        elif up in ("AT+CGMI", "AT+GMI"):
            self._answer("simgate", "OK")
        elif up in ("AT+CGMM", "AT+GMM"):
            self._answer("FakeModem", "OK")
        elif up in ("AT+CGMR", "AT+GMR"):
            self._answer("1.0", "OK")
        elif up.startswith("AT+CNMI=2,2") and b.refuses_inline:
            self._answer("+CMS ERROR: 303")  # operation not supported
        elif up.startswith("AT+CNMI="):
            fields = [f.strip() for f in up[8:].split(",")] + ["0"] * 5
            mt, ds = (int(f) if f.isdigit() else 0 for f in (fields[1], fields[3]))
            self._cnmi = (mt, ds)
            self._answer("OK")
        elif up.startswith("AT+CSMS="):
            wanted = up[8:].strip()
            if wanted == "1" and not b.phase2:
                self._answer("+CMS ERROR: 303")
            else:
                self._csms = 1 if wanted == "1" else 0
                self._answer("+CSMS: 1,1,1", "OK")  # mt, mo, bm supported
        elif up in ("AT+CNMA", "AT+CNMA=0"):
            if self._csms == 1 and self.unacked:
                self.unacked.pop(0)
                self._answer("OK")
            else:
                self._answer("+CMS ERROR: 340")  # no +CNMA acknowledgement expected
        elif up in ("AT", "ATE0", "ATZ", "AT&F") or re.match(
            r"AT\+(CMEE|CMGF|CNMI|CSMS|CPMS|CSMP|CSCS|CREG|CEREG|CGREG)=", up
        ):
            self._answer("OK")
        elif up == "AT+CPIN?":
            self._answer("+CPIN: SIM PIN" if locked else "+CPIN: READY", "OK")
        elif up.startswith("AT+CPIN="):
            given = line.split("=", 1)[1].strip('"')
            if b.pin is None or given == b.pin:
                self._pin_ok = True
                self._answer("OK")
            else:
                self._answer("+CME ERROR: 16")  # incorrect password (TS 27.007 §9.2.1)
        elif locked and up.startswith(("AT+CIMI", "AT+CRSM", "AT+CNUM", "AT+CMGS", "AT+COPS")):
            self._answer("+CME ERROR: 11")  # SIM PIN required
        elif up in ("AT+CREG?", "AT+CEREG?"):
            stat = 1 if b.registered and not locked else 2
            self._answer(f"{up[2:-1]}: 0,{stat}", "OK")
        elif up == "AT+CSQ":
            self._answer(f"+CSQ: {self.signal if b.registered else 99},99", "OK")
        elif up == "AT+COPS?":
            ops = f'+COPS: 0,0,"{self.operator}"' if b.registered else "+COPS: 0"
            self._answer(ops, "OK")
        elif up == "AT+CIMI":
            self._answer(self.imsi, "OK")
        elif up in ("AT+CGSN", "AT+GSN"):
            self._answer(self.imei, "OK")
        elif up == "AT+CRSM=176,12258,0,0,10":
            swapped = "".join(self.iccid[i + 1] + self.iccid[i] for i in range(0, 20, 2))
            self._answer(f'+CRSM: 144,0,"{swapped}"', "OK")
        elif up == "AT+CNUM":
            self._answer(f'+CNUM: "","{self.number}",145', "OK")
        elif up.startswith("AT+CFUN=1,1"):
            self.resets += 1
            self._pin_ok = False
            self._csms, self._cnmi = 0, None
            self.unacked.clear()
            self._answer("OK")
            if b.huawei_noise:
                self._answer("^BOOT:1,0,0,0,3")
        elif up in ("AT+CFUN=0", "AT+CFUN=1"):  # radio off / on (TS 27.007 §8.2)
            b.registered = up.endswith("1")
            self._answer("OK")
        elif up.startswith("AT+CMGS="):
            self._pdu_len = int(up.split("=", 1)[1])
            self._out("\r\n> ")
        elif up.startswith("AT+CMGR="):
            entry = self._store.get(int(up.split("=", 1)[1]))
            if entry is None:
                self._answer("+CMS ERROR: 321")  # invalid memory index
            else:
                self._answer(*entry.split("\r\n"), "OK")
        elif up.startswith("AT+CMGL="):
            listing = []
            for index, entry in sorted(self._store.items()):
                head, pdu = entry.split("\r\n")
                listing += [head.replace("+CMGR: ", f"+CMGL: {index},"), pdu]
            self._answer(*listing, "OK")
        elif up.startswith("AT+CMGD="):
            self._store.pop(int(up.split("=", 1)[1].split(",")[0]), None)
            self._answer("OK")
        elif up.startswith("AT+CUSD="):
            self._ussd(line)
        else:
            self._answer("ERROR")

    async def _cmgs(self, pdu_hex: str) -> None:
        b = self.behaviour
        if b.cmgs_latency:
            await asyncio.sleep(b.cmgs_latency)
        if b.silent:
            return
        if b.cms_times > 0 and b.cms_error is not None:
            b.cms_times -= 1
            self._answer(f"+CMS ERROR: {b.cms_error}")
            return
        if not b.registered:
            self._answer("+CMS ERROR: 331")  # no network service (TS 27.005 §3.2.5)
            return
        try:
            submit = tpdu.decode_submit(bytes.fromhex(pdu_hex))
        except (ValueError, tpdu.TpduError):
            self._answer("+CMS ERROR: 304")  # invalid PDU mode parameter
            return
        self.submits.append(pdu_hex)
        mr = self._mr
        self._mr = (self._mr + 1) % 256
        if b.lose_answers > 0:  # gone to the network, the answer lost with the line
            b.lose_answers -= 1
            self.drops_line()
            if submit.srr:  # nobody listens: the report waits in storage (+CDSI)
                self._report(mr, submit.recipient, stored=True)
            return
        if submit.srr and b.report_first:
            self._report(mr, submit.recipient)
        self._answer(f"+CMGS: {mr}", "OK")
        if submit.srr and not b.report_first:
            if b.hold_reports:
                self._held.append((mr, submit.recipient))
                return
            if b.report_delay:
                await asyncio.sleep(b.report_delay)
            self._report(mr, submit.recipient)

    def _report(self, mr: int, recipient: str, *, stored: bool = False) -> None:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        raw = tpdu.encode_status_report(
            mr=mr, recipient=recipient, scts=now, discharge=now, status=self.behaviour.report_status
        )
        tpdu_len = len(raw) - 1
        routed = self._cnmi is not None and self._cnmi[1] == 2
        if stored or routed or self.behaviour.reports == "stored":
            index = self._keep(f"+CMGR: 0,,{tpdu_len}\r\n{raw.hex().upper()}")
            self._answer(f'+CDSI: "SM",{index}')
        else:
            self._inline(f"+CDS: {tpdu_len}", raw.hex().upper())

    def _keep(self, entry: str) -> int:
        index = next(i for i in range(1000) if i not in self._store)
        self._store[index] = entry
        return index

    def deliver(
        self,
        *,
        sender: str,
        text: str,
        stored: bool = False,
        order: list[int] | None = None,
        only: list[int] | None = None,
    ) -> int:
        """An SMS arriving from ``sender``; ``order`` permutes its parts (0-based), ``only``
        sends just those parts (the rest later, with another call). Returns the parts."""
        enc = Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2
        self._ref = (self._ref + 1) % 256
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        pdus = tpdu.encode_deliver(
            sender=sender, text=text, encoding=enc, scts=now, smsc="+15550000000", ref=self._ref
        )
        picks = order if order is not None else list(range(len(pdus)))
        if only is not None:
            picks = [i for i in picks if i in only]
        for i in picks:
            raw = pdus[i]
            smsc_len = raw[0] + 1
            length = len(raw) - smsc_len
            if stored or (self._cnmi is not None and self._cnmi[0] == 1):
                index = self._keep(f"+CMGR: 0,,{length}\r\n{raw.hex().upper()}")
                self._answer(f'+CMTI: "SM",{index}')
            else:
                self._inline(f"+CMT: ,{length}", raw.hex().upper())
        return len(pdus)

    def _inline(self, head: str, pdu: str) -> None:
        """+CMT/+CDS; with +CSMS=1 it awaits a +CNMA (and may come again without one)."""
        entry = f"{head}\r\n{pdu}"
        if self._csms == 1:
            self.unacked.append(entry)
            if self.behaviour.redeliver_after is not None:
                self._spawn(self._redeliver(entry, self.behaviour.redeliver_after))
        self._answer(head, pdu)

    async def _redeliver(self, entry: str, after: float) -> None:
        for _ in range(3):
            await asyncio.sleep(after)
            if entry not in self.unacked:
                return
            self._answer(*entry.split("\r\n"))

    def redeliver_ref(self) -> None:
        """The next ``deliver`` reuses the last concatenation reference (its other parts)."""
        self._ref = (self._ref - 1) % 256

    def _ussd(self, line: str) -> None:
        m = re.match(r'AT\+CUSD=(\d)(?:,"([^"]*)")?', line, re.IGNORECASE)
        if m is None:
            self._answer("ERROR")
            return
        self._answer("OK")
        if m.group(1) == "2" or not m.group(2):
            return
        reply = f"Balance for {m.group(2)}: 12.34 USD"
        if self.behaviour.ussd_ucs2:
            self._answer(f'+CUSD: 0,"{reply.encode("utf-16-be").hex().upper()}",72')
        else:
            self._answer(f'+CUSD: 0,"{reply}",15')


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
