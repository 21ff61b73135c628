"""sipp (Debian ``sip-tester``) as the far end of the SIP line's tests: one UAS scenario per
process, from tests/lines/sip/scenarios/, stopped by its own process id."""

from __future__ import annotations

import asyncio
import math
import shutil
import signal
import socket
import struct
import subprocess
from pathlib import Path
from types import TracebackType

from simgate.domain.calls import Audio
from simgate.lines.voice import Call, CallEvent, CallEventKind
from simgate.settings import SipVoiceLineSettings
from tests.conftest import need_peer

SCENARIOS = Path(__file__).resolve().parents[1] / "lines" / "sip" / "scenarios"
CALLEE = "8613800138000"
PCAPS = Path("/usr/share/sip-tester")  # sipp's own RFC 4733 captures (dtmf_2833_*.pcap)


def need_sipp(*, pcaps: bool = False) -> None:
    need_peer("sipp", shutil.which("sipp") is not None, "apt-get install sip-tester")
    if pcaps:
        found = (PCAPS / "dtmf_2833_1.pcap").exists()
        need_peer("sipp pcaps", found, f"{PCAPS}/dtmf_2833_*.pcap (sip-tester) missing")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sipp:
    """``sipp -sf SCENARIO`` as a UAS on 127.0.0.1; ``calls`` = calls to serve, then exit."""

    def __init__(
        self,
        scenario: str,
        workdir: Path,
        *,
        calls: int = 1,
        keys: dict[str, str] | None = None,
        tcp: bool = False,
        echo: bool = False,
    ) -> None:
        self.port = free_udp_port()
        self.media_port = free_udp_port()
        self.scenario = SCENARIOS / f"{scenario}.xml"
        args = ["sipp", "-sf", str(self.scenario), "-i", "127.0.0.1", "-p", str(self.port)]
        args += ["-mi", "127.0.0.1", "-mp", str(self.media_port), "-m", str(calls)]
        args += ["-nostdin", "-trace_err", "-trace_msg", "-timeout", "120"]
        if echo:
            args.append("-rtp_echo")  # send every RTP packet back to where it came from
        if tcp:
            args += ["-t", "t1"]  # one TCP connection (RFC 3261 §18.3 framing)
        self.tcp = tcp
        for name, value in (keys or {}).items():
            args += ["-key", name, value]
        self.workdir = workdir
        self._log = (workdir / f"sipp-{scenario}.out").open("wb")
        self.proc = subprocess.Popen(
            args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log
        )

    def line(self, **extra: object) -> SipVoiceLineSettings:
        """Settings of a SIP line to this sipp."""
        lo = 30000 + (self.port % 300) * 100  # tests in parallel stay apart
        cfg = {
            "driver": "sip",
            "proxy": f"127.0.0.1:{self.port}",
            "rtp_ports": f"{lo}-{lo + 99}",
            "calls_per_second": 50,
            "max_concurrent": 10,
            "transport": "tcp" if self.tcp else "udp",
            **extra,
        }
        return SipVoiceLineSettings.model_validate(cfg)

    async def listening(self) -> None:
        """Until sipp's TCP socket listens: a connect before that is refused (TCP has no
        retransmission to cover it, unlike UDP); a fixed sleep lost that race under load."""
        async with asyncio.timeout(20):
            while not self._listens():
                if self.proc.poll() is not None:
                    raise AssertionError(f"sipp exited ({self.proc.returncode}) before listening")
                await asyncio.sleep(0.02)

    def _listens(self) -> bool:
        # The kernel's table, not a probing connect (sipp would count that as a peer).
        want = f"0100007F:{self.port:04X}"
        for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = row.split()
            if fields[1] == want and fields[3] == "0A":  # 0A: TCP_LISTEN
                return True
        return False

    def wait(self, timeout: float = 30) -> int:
        """sipp's exit code: 0 when every call of the scenario succeeded."""
        return self.proc.wait(timeout=timeout)

    def messages(self) -> str:
        """sipp's message trace (what it sent and received)."""
        logs = sorted(self.workdir.glob(f"{self.scenario.stem}_*_messages.log"))
        return "\n".join(p.read_text(errors="replace") for p in logs)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> Sipp:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def tone(seconds: float) -> Audio:
    """A tone of ``seconds`` at the call rate (distinct samples, so reordering shows)."""
    n = int(seconds * 8000)
    return Audio(struct.pack(f"<{n}h", *(int(6000 * math.sin(i / 5)) for i in range(n))))


async def talk(call: Call, audio: Audio, *, loops: int = 1) -> list[CallEvent]:
    """Run one call as the dispatcher would: play on ANSWERED, hang up after PLAYED."""
    events: list[CallEvent] = []
    async with asyncio.timeout(40):
        async for event in call.events():
            events.append(event)
            if event.kind is CallEventKind.ANSWERED:
                await call.play(audio, loops)
            elif event.kind is CallEventKind.PLAYED:
                await call.hangup()
    return events


def kinds(events: list[CallEvent]) -> list[str]:
    return [e.kind.value + (f":{e.digit}" if e.digit else "") for e in events]
