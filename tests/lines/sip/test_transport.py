"""SIP over TCP and UDP to sipp: the stream is framed by Content-Length, junk is dropped."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest

from simgate.clock import SystemClock
from simgate.codecs.sip.message import SipMessage
from simgate.lines.sip.line import SipVoiceLine
from simgate.lines.sip.transport import SipTransport
from simgate.lines.voice import CallRequest
from tests.support.sipp import CALLEE, Sipp, free_udp_port, kinds, need_sipp, talk, tone


@pytest.mark.peer
async def test_a_call_with_info_keys_over_tcp(tmp_path: Path) -> None:
    need_sipp()
    with Sipp("answer_info", tmp_path, tcp=True) as sipp:
        await sipp.listening()
        line = SipVoiceLine("tcp", sipp.line(), SystemClock())
        await line.start()
        try:
            events = await talk(await line.dial(CallRequest(1, CALLEE, "")), tone(2.0))
        finally:
            await line.stop()
        assert sipp.wait() == 0, sipp.messages()
    assert kinds(events) == ["ringing", "answered", "dtmf:1", "dtmf:5", "dtmf:#", "played", "ended"]
    assert "SIP/2.0/TCP" in sipp.messages()


async def test_junk_on_the_udp_socket_is_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    got: list[SipMessage] = []
    transport = SipTransport(
        kind="udp",
        proxy=("127.0.0.1", free_udp_port()),
        local_host="127.0.0.1",
        local_port=0,
        on_message=got.append,
    )
    await transport.open()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with caplog.at_level(logging.WARNING):
            sender.sendto(b"\x00\xffjunk\r\n\r\n", transport.local_address)
            sender.sendto(b"OPTIONS sip:x SIP/2.0\r\nCall-ID: 1\r\n\r\n", transport.local_address)
            for _ in range(50):
                await asyncio.sleep(0.01)
                if got:
                    break
    finally:
        sender.close()
        await transport.close()
    assert [m.call_id for m in got] == ["1"]
    assert "dropped an unreadable SIP message" in caplog.text
