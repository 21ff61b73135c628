"""The itniotech envelope without a database: body parsing and the response (spec §7)."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from simgate.api.dialects.itnio.envelope import (
    MEDIA_TYPE,
    ItnioError,
    json_response,
    ok_body,
    parse_object,
)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"content":"\xff"}', "body is not UTF-8"),
        (b'{"content":"\xed\xa0\x80"}', "body is not UTF-8"),  # an encoded surrogate
        (b"\xef\xbb\xbf{}", "body is not valid JSON"),  # UTF-8, with a byte order mark
        (b'{"content":"\\ud800"}', "body is not valid JSON"),  # a lone escaped surrogate
        (b'{"content":', "body is not valid JSON"),
        (b"[1]", "body must be a JSON object"),
    ],
)
def test_a_body_that_is_not_a_utf8_json_object_is_refused_with_its_reason(
    body: bytes, detail: str
) -> None:
    with pytest.raises(ItnioError) as caught:
        parse_object(body)
    assert (caught.value.code, caught.value.detail) == (-22, detail)


def test_a_json_object_is_parsed() -> None:
    assert parse_object('{"content":"é"}'.encode()) == {"content": "é"}
    assert parse_object(b"  ") == {}


def test_the_envelope_response_is_what_starlette_would_send() -> None:
    body = ok_body(success="1")
    ours = json_response(body)
    theirs = Response(content=body, media_type=MEDIA_TYPE)
    assert (ours.status_code, ours.raw_headers, ours.body, ours.background) == (
        theirs.status_code,
        theirs.raw_headers,
        theirs.body,
        theirs.background,
    )
    assert ours.headers["content-type"] == "application/json;charset=UTF-8"
