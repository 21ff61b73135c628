"""fileUpload and fileQuery (spec §1.13): audio checks, names, paging, the upload body cap."""

from __future__ import annotations

import base64
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from simgate.testing.clock import FakeClock
from tests.api.itnio.conftest import (
    Itnio,
    add_voice_app,
    make_itnio,
    raw_envelope,
    wav_b64,
    wav_bytes,
)
from tests.support.itnio_voice import other_account, upload

MB = 1024 * 1024


async def test_upload_then_query(itnio: Itnio) -> None:
    got = await upload(itnio, "greeting.wav")
    assert got["status"] == "0", got
    file_id = got["data"]
    # The vendor's shape: "1" + yyyyMMdd + 32 hex + the suffix (spec §1.13 sample).
    assert file_id.startswith("120260101")
    assert file_id.endswith(".wav")
    assert len(file_id) == 1 + 8 + 32 + 4
    for n in range(2):
        assert (await upload(itnio, f"more-{n}.wav"))["status"] == "0"
    page = (await itnio.post("/voice/fileQuery", {"current": 2, "size": 2}))["data"]
    assert {k: page[k] for k in ("total", "size", "current", "pages")} == {
        "total": 3,
        "size": 2,
        "current": 2,
        "pages": 2,
    }
    assert len(page["records"]) == 1
    everything = (await itnio.post("/voice/fileQuery", {}))["data"]
    assert everything["size"] == 25  # defaults: current 1, size 25
    assert {r["fileName"] for r in everything["records"]} == {
        "greeting.wav",
        "more-0.wav",
        "more-1.wav",
    }
    assert file_id in {r["fileId"] for r in everything["records"]}
    # Another account sees none of them, and may use the same names.
    other = await other_account(itnio)
    assert (await other.post("/voice/fileQuery", {}))["data"]["total"] == 0
    assert (await upload(other, "greeting.wav"))["status"] == "0"


async def test_name_taken_is_minus_20(itnio: Itnio) -> None:
    assert (await upload(itnio, "same.wav"))["status"] == "0"
    got = await upload(itnio, "same.wav", wav_b64(0.25))
    assert got["status"] == "-20", got


async def test_replayed_upload_returns_the_first_file_id(itnio_sqlite: Itnio) -> None:
    env = itnio_sqlite
    headers = env.headers()
    body = {"fileName": "once.wav", "file": wav_b64()}
    first = await env.post("/voice/fileUpload", body, headers=headers)
    again = await env.post("/voice/fileUpload", body, headers=headers)
    assert first["status"] == "0"
    assert again == first  # §7 replay: the first answer, not -20 for its own name


@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("notes.mp3", base64.b64encode(b"these are my notes, not audio\n" * 20).decode(), "-21"),
        ("notes.wav", base64.b64encode(b"RIFF\x00\x00\x00\x00WAVEjunk").decode(), "-21"),
        ("tone.mp3", wav_b64(), "-21"),  # a WAV named .mp3
        ("tone.wav", "not base64 at all!!", "-21"),
        ("tone.wav", wav_b64()[:-3], "-21"),  # cut short: bad padding
        ("tone.wav", "", "-22"),  # file missing
        ("tone.wav", None, "-22"),
        ("tone.wav", 12345, "-22"),
        ("", wav_b64(), "-22"),
        ("a.wv", wav_b64(), "-22"),
        ("tone.ogg", wav_b64(), "-22"),
        ("../../etc.wav", wav_b64(), "-22"),
        ("x" * 40 + ".wav", wav_b64(), "-22"),
        ("to\x00ne.wav", wav_b64(), "-22"),
        (["tone.wav"], wav_b64(), "-22"),
    ],
)
async def test_bad_uploads(itnio_sqlite: Itnio, name: Any, data: Any, status: str) -> None:
    got = await itnio_sqlite.post("/voice/fileUpload", {"fileName": name, "file": data})
    assert got["status"] == status, got


async def test_data_url_and_line_breaks_are_accepted(itnio_sqlite: Itnio) -> None:
    raw = base64.encodebytes(wav_bytes()).decode()  # MIME style: a line break every 76
    got = await upload(itnio_sqlite, "wrapped.wav", "data:audio/wav;base64," + raw)
    assert got["status"] == "0", got


async def test_upload_body_may_exceed_the_global_limit(itnio_sqlite: Itnio) -> None:
    """Bodies past http.max_body_bytes but within the upload cap are read and judged."""
    env = itnio_sqlite
    global_limit = env.services.settings.http.max_body_bytes
    junk = base64.b64encode(b"\x01" * global_limit).decode()
    got = await env.post("/voice/fileUpload", {"fileName": "junk.wav", "file": junk})
    assert got["status"] == "-21", got  # judged as audio, not refused as too large


async def test_fifty_megabytes_are_refused_before_reading(itnio_sqlite: Itnio) -> None:
    env = itnio_sqlite
    b64 = math.ceil(env.services.settings.voice.max_file_bytes * 4 / 3)
    cap = b64 + math.ceil(b64 / 76) * 2 + 64 * 1024  # room for MIME line breaks
    body = b'{"fileName": "big.wav", "file": "' + b"A" * (50 * MB) + b'"}'
    got = await raw_envelope(env, "POST", "/voice/fileUpload", content=body)
    assert got["status"] == "-22"
    assert f"larger than {cap} bytes" in got["reason"]


async def test_lying_or_absent_content_length_is_capped_while_reading(itnio_sqlite: Itnio) -> None:
    env = itnio_sqlite
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"fileName": "big.wav", "file": "'
        for _ in range(50):
            sent += MB
            yield b"A" * MB
        yield b'"}'

    got = await raw_envelope(
        env, "POST", "/voice/fileUpload", content=chunks()
    )  # chunked, no length
    assert got["status"] == "-22"
    assert "larger than" in got["reason"]
    assert sent < 50 * MB  # stopped reading early
    sent = 0
    got = await raw_envelope(
        env,
        "POST",
        "/voice/fileUpload",
        content=chunks(),
        extra_headers={"Content-Length": "100"},
    )
    assert got["status"] == "-22"
    assert sent < 50 * MB


@pytest.mark.parametrize(
    "body",
    [
        {"current": 0},
        {"size": 0},
        {"size": 101},
        {"current": "one"},
        {"size": 2.5},
        {"current": [1]},
    ],
)
async def test_file_query_bad_paging(itnio_sqlite: Itnio, body: dict[str, Any]) -> None:
    got = await itnio_sqlite.post("/voice/fileQuery", body)
    assert got["status"] == "-22", got


async def test_a_mime_style_base64_file_near_the_limit_is_not_refused_for_its_line_breaks(
    tmp_path: Path, backend: str, clock: FakeClock
) -> None:
    """Line breaks every 76 characters (MIME encoders) are not counted against the file size."""
    async with make_itnio(backend, tmp_path, clock, voice={"max_file_bytes": 64 * 1024}) as env:
        await add_voice_app(env)
        raw = wav_bytes(seconds=3.9)  # 8 kHz 16-bit: ~62.4 KB, just under 64 KiB
        assert len(raw) <= 64 * 1024
        encoded = base64.encodebytes(raw).decode("ascii")  # a line break every 76 characters
        got = await env.post("/voice/fileUpload", {"fileName": "near.wav", "file": encoded})
        assert got["status"] == "0", got
