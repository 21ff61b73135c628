"""The SIP line against sipp UAS scenarios (tests/lines/sip/scenarios/): real SIP, real RTP
on loopback, real time (each call lasts a second or two)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

import pytest

from simgate.clock import SystemClock
from simgate.codecs import g711
from simgate.codecs.rtp import decode
from simgate.domain.calls import Audio
from simgate.lines.sip.line import SipVoiceLine
from simgate.lines.voice import Call, CallEvent, CallEventKind, CallRequest
from simgate.metrics import Metrics
from simgate.runtime import build_voice_line
from simgate.settings import SipVoiceLineSettings
from tests.support.sipp import CALLEE, Sipp, free_udp_port, kinds, need_sipp, talk, tone

pytestmark = pytest.mark.peer


async def one_call(
    sipp: Sipp, audio: Audio, *, metrics: Metrics | None = None, **line_cfg: object
) -> tuple[list[CallEvent], SipVoiceLine]:
    line = SipVoiceLine("sip", sipp.line(**line_cfg), SystemClock(), metrics=metrics)
    await line.start()
    try:
        call = await line.dial(CallRequest(1, CALLEE, ""))
        events = await talk(call, audio)
    finally:
        await line.stop()
    return events, line


async def test_answer_with_rfc4733_keys_1_5_pound(tmp_path: Path) -> None:
    need_sipp(pcaps=True)
    metrics = Metrics()
    with Sipp("answer_rfc4733", tmp_path) as sipp:
        events, line = await one_call(sipp, tone(3.0), metrics=metrics)
        assert sipp.wait() == 0, sipp.messages()
    assert kinds(events) == ["ringing", "answered", "dtmf:1", "dtmf:5", "dtmf:#", "played", "ended"]
    assert (events[-1].sip_code, events[-1].by_remote) == (200, False)
    assert line.stats.attempts == {200: 1}
    assert line.stats.rtp.sent == 150  # 3 s of audio, 20 ms a packet
    assert line.stats.rtp.received == 30  # sipp's three captures, 10 packets each
    scrape = metrics.registry.get_sample_value
    assert scrape("simgate_sip_rtp_packets", {"line": "sip", "kind": "sent"}) == 150
    assert scrape("simgate_sip_rtp_packets", {"line": "sip", "kind": "received"}) == 30
    assert scrape("simgate_sip_calls_up", {"line": "sip"}) == 0  # ended


async def test_answer_with_sip_info_keys(tmp_path: Path) -> None:
    need_sipp()
    with Sipp("answer_info", tmp_path) as sipp:
        events, _ = await one_call(sipp, tone(2.0), dtmf="info")
        assert sipp.wait() == 0, sipp.messages()
    assert kinds(events) == ["ringing", "answered", "dtmf:1", "dtmf:5", "dtmf:#", "played", "ended"]


async def test_info_keys_are_ignored_when_the_line_takes_rfc4733_only(tmp_path: Path) -> None:
    need_sipp()
    with Sipp("answer_info", tmp_path) as sipp:
        events, _ = await one_call(sipp, tone(2.0), dtmf="rfc4733")
        assert sipp.wait() == 0, sipp.messages()
    assert kinds(events) == ["ringing", "answered", "played", "ended"]


@pytest.mark.parametrize("code", [486, 404, 603, 480])
async def test_a_failure_answer_ends_the_call_with_its_code(tmp_path: Path, code: int) -> None:
    need_sipp()
    with Sipp(f"fail_{code}", tmp_path) as sipp:
        events, line = await one_call(sipp, tone(1.0))
        assert sipp.wait() == 0, sipp.messages()
    assert kinds(events) == ["ended"]
    assert (events[0].sip_code, events[0].by_remote) == (code, True)
    assert line.stats.attempts == {code: 1}


async def test_hanging_up_while_ringing_cancels_with_487(tmp_path: Path) -> None:
    need_sipp()
    with Sipp("no_answer", tmp_path) as sipp:
        line = SipVoiceLine("sip", sipp.line(), SystemClock())
        await line.start()
        try:
            call = await line.dial(CallRequest(1, CALLEE, ""))
            events: list[CallEvent] = []
            async with asyncio.timeout(20):
                async for event in call.events():
                    events.append(event)
                    if event.kind is CallEventKind.RINGING:
                        await call.hangup()  # what the flow does at maxRingingTime
        finally:
            await line.stop()
        assert sipp.wait() == 0, sipp.messages()
    assert kinds(events) == ["ringing", "ended"]
    assert (events[-1].sip_code, events[-1].by_remote) == (487, False)
    assert "CANCEL sip:" in sipp.messages()


async def test_a_far_end_bye_mid_play_ends_the_call_then(tmp_path: Path) -> None:
    need_sipp()
    with Sipp("far_bye", tmp_path) as sipp:
        events, line = await one_call(sipp, tone(10.0))
        assert sipp.wait() == 0, sipp.messages()
    assert kinds(events) == ["ringing", "answered", "ended"]
    answered, ended = events[1], events[2]
    assert (ended.sip_code, ended.by_remote) == (200, True)
    assert 1200 <= ended.at_ms - answered.at_ms < 5000  # sipp hangs up 1.5 s in, not at 10 s
    assert line.stats.rtp.sent < 250  # the audio stopped with the call


async def test_a_401_challenge_is_answered_with_digest(tmp_path: Path) -> None:
    need_sipp()
    with Sipp("auth", tmp_path) as sipp:
        events, _ = await one_call(sipp, tone(1.0), username="alice", password="secret")
        assert sipp.wait() == 0, sipp.messages()
    assert kinds(events) == ["answered", "played", "ended"]
    assert events[-1].sip_code == 200
    assert "Authorization: Digest " in sipp.messages()


async def test_refused_credentials_end_the_call_with_a_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    need_sipp()
    with Sipp("auth", tmp_path) as sipp:
        with caplog.at_level(logging.ERROR):
            events, _ = await one_call(sipp, tone(1.0), username="alice", password="wrong")
        sipp.wait()
    assert kinds(events) == ["ended"]
    assert events[0].sip_code == 403  # sipp checked our digest, found it wrong, refused
    events2 = events  # one attempt with credentials, no loop of retries
    assert len(events2) == 1


async def test_the_far_end_receives_the_calls_audio_paced_at_50_packets_a_second(
    tmp_path: Path,
) -> None:
    need_sipp()
    rtp_port = free_udp_port()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", rtp_port))
    sock.setblocking(False)
    captured: list[tuple[float, bytes]] = []
    loop = asyncio.get_running_loop()

    def readable() -> None:
        while True:
            try:
                data = sock.recv(2048)
            except BlockingIOError:
                return
            captured.append((time.monotonic(), data))

    loop.add_reader(sock.fileno(), readable)
    audio = tone(2.0)
    try:
        with Sipp("answer_to_socket", tmp_path, keys={"rtp_port": str(rtp_port)}) as sipp:
            events, _ = await one_call(sipp, audio, codecs=["PCMU"])
            assert sipp.wait() == 0, sipp.messages()
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
    assert kinds(events) == ["ringing", "answered", "played", "ended"]
    packets = [decode(data) for _, data in captured]
    assert len(packets) == 100
    assert [p.sequence for p in packets] == [(packets[0].sequence + i) & 0xFFFF for i in range(100)]
    assert [p.timestamp - packets[0].timestamp for p in packets] == [160 * i for i in range(100)]
    assert {p.ssrc for p in packets} == {packets[0].ssrc}
    assert [p.marker for p in packets] == [True] + [False] * 99
    assert {p.payload_type for p in packets} == {0}
    pcm = g711.ulaw_decode(b"".join(p.payload for p in packets))
    assert pcm == g711.ulaw_decode(g711.ulaw_encode(audio.pcm))  # the call's samples, in order
    # Paced, not burst: 99 gaps of 20 ms cannot arrive in less than ~2 s (a far end's jitter
    # buffer overflows on a burst). Only the lower bound is a property: a loaded machine makes
    # the span longer, and speed is the benchmarks' business (tests never assert on it).
    span = captured[-1][0] - captured[0][0]
    assert span >= 99 * 0.020 * 0.9


@pytest.mark.parametrize(("password", "registered"), [("secret", True), ("wrong", False)])
async def test_register_answers_the_registrars_challenge(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, password: str, registered: bool
) -> None:
    need_sipp()
    with Sipp("register", tmp_path) as sipp:
        cfg = sipp.line(register=True, username="alice", password=password)
        line = SipVoiceLine("sip", cfg, SystemClock())
        with caplog.at_level(logging.ERROR):
            await line.start()
        try:
            assert line.registered is registered
        finally:
            await line.stop()
        sipp.wait()
    assert sipp.messages().count("REGISTER sip:127.0.0.1 SIP/2.0") >= 2
    if not registered:
        assert "refused registration for 'alice' (SIP 403 Forbidden)" in caplog.text


async def test_no_answer_at_all_ends_with_408_after_the_invite_timeout() -> None:
    silent = free_udp_port()  # nobody listens: the INVITE is resent, then given up on
    cfg = SipVoiceLineSettings(
        driver="sip",
        proxy=f"127.0.0.1:{silent}",
        rtp_ports="39000-39009",
        invite_timeout_seconds=1.6,
    )
    line = SipVoiceLine("sip", cfg, SystemClock())
    await line.start()
    try:
        events = await talk(await line.dial(CallRequest(1, CALLEE, "")), tone(1.0))
    finally:
        await line.stop()
    assert kinds(events) == ["ended"]
    assert (events[0].sip_code, events[0].reason, events[0].by_remote) == (408, "no answer", True)


async def test_a_stopped_line_a_bad_number_and_a_full_line_end_at_once() -> None:
    cfg = SipVoiceLineSettings(
        driver="sip",
        proxy=f"127.0.0.1:{free_udp_port()}",
        rtp_ports="39010-39019",
        max_concurrent=1,
        invite_timeout_seconds=1.0,
    )
    line = SipVoiceLine("sip", cfg, SystemClock())
    stopped = await line.dial(CallRequest(1, CALLEE, ""))  # before start
    await line.start()
    try:
        bad = await line.dial(CallRequest(2, "12ab", ""))
        first = await line.dial(CallRequest(3, CALLEE, ""))
        full = await line.dial(CallRequest(4, CALLEE, ""))
        codes = [[e.sip_code for e in await _all(c)] for c in (stopped, bad, full)]
        await _all(first)  # 408 after a second: nobody answers
    finally:
        await line.stop()
    assert codes == [[503], [484], [503]]
    assert line.stats.attempts == {503: 2, 484: 1, 408: 1}


async def _all(call: Call) -> list[CallEvent]:
    return [e async for e in call.events()]


def test_the_runtime_builds_a_sip_line_from_its_settings() -> None:
    cfg = SipVoiceLineSettings(driver="sip", proxy="127.0.0.1:5060")
    line = build_voice_line("trunk", cfg, SystemClock(), Metrics())
    assert isinstance(line, SipVoiceLine)
    assert (line.name, line.calls_per_second, line.max_concurrent) == ("trunk", 5.0, 30)
