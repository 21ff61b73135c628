"""Malformed, oversized and hostile input on the voice endpoints: HTTP 200 with a code, no 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.itnio.conftest import Itnio, add_voice_app, raw_envelope

POSTS = [
    "/voice/sendCode",
    "/voice/sendGroup",
    "/voice/fileUpload",
    "/voice/fileQuery",
    "/voice/recordGroupQuery",
    "/v3/voice/sendGroup",
    "/v3/voice/recordGroupQuery",
]


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[1,2]",
        b'"text"',
        b"null",
        b"\xff\xfe{}",
        b'{"appId": "\xc3\x28"}',
        b"{'appId': 1}",
        b'{"appId": NaN}',
        b'{"size": 1e999}',
        b'{"a":' * 5000 + b"1" + b"}" * 5000,  # deeper than any parser should follow
    ],
)
async def test_malformed_bodies_are_minus_22(itnio_sqlite: Itnio, path: str, body: bytes) -> None:
    got = await raw_envelope(itnio_sqlite, "POST", path, content=body)
    assert got["status"] == "-22", got


@pytest.mark.parametrize("path", [p for p in POSTS if "fileUpload" not in p])
async def test_global_body_limit_applies_except_to_uploads(itnio_sqlite: Itnio, path: str) -> None:
    limit = itnio_sqlite.services.settings.http.max_body_bytes
    big = b'{"text": "' + b"a" * limit + b'"}'
    got = await raw_envelope(itnio_sqlite, "POST", path, content=big)
    assert got["status"] == "-22"
    assert f"larger than {limit} bytes" in got["reason"]


@pytest.mark.parametrize("path", [*POSTS, "/voice/recordGroup/2601010000001000001"])
async def test_unsigned_requests_are_minus_1(itnio_sqlite: Itnio, path: str) -> None:
    method = "GET" if "recordGroup/" in path else "POST"
    headers = {"Content-Type": "application/json"}
    got = await raw_envelope(itnio_sqlite, method, path, headers=headers, content=b"{}")
    assert got["status"] == "-1"
    bad = itnio_sqlite.headers(secret="wrong-secret")
    assert (await raw_envelope(itnio_sqlite, method, path, headers=bad, content=b"{}"))[
        "status"
    ] == "-1"


@pytest.mark.parametrize(
    "body",
    [
        {"appId": 5},
        {"appId": ["a"]},
        {"appId": "x" * 10_000},
        {"callee": {"a": 1}},
        {"callee": "8" * 100_000},
        {"text": None},
        {"text": 7},
        {"text": "a\x00b"},
        {"text": "\u202e" * 2000},
        {"language": ["EN"]},
        {"language": "EN\x00"},
        {"speakingRate": "Infinity"},
        {"speakingRate": "1e309"},
        {"speakingRate": {"v": 1}},
        {"ssmlGender": "2x"},
        {"loopCount": "999999999999999999999"},
        {"maxDuration": -1},
        {"maxRingingTime": 2**70},
        {"calledInfo": ["x"]},
        {"displayNum": 123},
    ],
)
async def test_send_code_wrong_types_and_hostile_values(
    itnio_sqlite: Itnio, body: dict[str, Any]
) -> None:
    app = await add_voice_app(itnio_sqlite)
    full = {
        "appId": app.app_id,
        "callee": "8613800138000",
        "language": "EN",
        "text": "hello",
        **body,
    }
    got = await raw_envelope(itnio_sqlite, "POST", "/voice/sendCode", json=full)
    assert got["status"] == "-22", (body, got)


@pytest.mark.parametrize(
    "body",
    [
        {"callee": ["932111111111"]},
        {"callee": "," * 10_000},
        {"callee": ",".join(["932111111111"] * 201)},
        {"fileId": {"id": 1}},
        {"fileId": "../../etc/passwd"},
        {"fileId": "f\x00.mp3"},
        {"loopCount": 0},
        {"calledInfo": "x" * 1001},
    ],
)
async def test_send_group_wrong_types_and_hostile_values(
    itnio_sqlite: Itnio, body: dict[str, Any]
) -> None:
    app = await add_voice_app(itnio_sqlite)
    full = {"appId": app.app_id, "callee": "932111111111", "fileId": "x.mp3", **body}
    got = await raw_envelope(itnio_sqlite, "POST", "/voice/sendGroup", json=full)
    assert got["status"] == "-22", (body, got)


async def test_empty_bodies(itnio_sqlite: Itnio) -> None:
    for path in ("/voice/sendCode", "/voice/sendGroup", "/voice/fileUpload"):
        assert (await raw_envelope(itnio_sqlite, "POST", path, content=b""))["status"] == "-22"
    assert (await raw_envelope(itnio_sqlite, "POST", "/voice/recordGroupQuery", content=b""))[
        "status"
    ] == "-22"  # params are required
    got = await raw_envelope(itnio_sqlite, "POST", "/voice/fileQuery", content=b"")
    assert got["status"] == "0"  # every field has a default
    assert got["data"] == {"total": 0, "size": 25, "current": 1, "pages": 0, "records": []}


async def test_bad_content_length(itnio_sqlite: Itnio) -> None:
    for path in ("/voice/fileUpload", "/voice/sendGroup"):
        got = await raw_envelope(
            itnio_sqlite, "POST", path, content=b"{}", extra_headers={"Content-Length": "-5"}
        )
        assert got["status"] == "-22", got


async def test_hostile_voice_ids(itnio_sqlite: Itnio) -> None:
    for vid in ("%ff%fe", "' OR 1=1 --", "1" * 5000, "0x10", "+1", "%20123", "١٢٣"):
        got = await raw_envelope(itnio_sqlite, "GET", f"/voice/recordGroup/{vid}")
        assert got["status"] == "-22", (vid, got)


async def test_voice_ids_above_bigint_are_no_record(itnio_sqlite: Itnio) -> None:
    """19 digits may exceed 2**63 - 1 (issue 14 item 9): "no record", not an overflow (-18)."""
    for vid in (str(2**63), "9999999999999999999", "9312312359590000000"):
        got = await raw_envelope(itnio_sqlite, "GET", f"/voice/recordGroup/{vid}")
        assert got["status"] == "-22", (vid, got)
        assert "no record" in got["reason"] or "not a record" in got["reason"], got


async def test_voice_query_window_after_2092_is_answered(itnio_sqlite: Itnio) -> None:
    await add_voice_app(itnio_sqlite)
    got = await raw_envelope(
        itnio_sqlite,
        "POST",
        "/voice/recordGroupQuery",
        json={
            "current": 1,
            "size": 10,
            "params": {"strTime": "2093-01-01T00:00:00Z", "endTime": "2093-01-02T00:00:00Z"},
        },
    )
    assert got["status"] == "0", got
    assert got["data"]["records"] == []
