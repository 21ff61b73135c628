"""Digest answers: the RFC 2617 §3.5 example, and the forms SIP trunks send."""

from __future__ import annotations

import hashlib

import pytest

from simgate.codecs.sip.digest import DigestError, authorization, parse_challenge, response


def test_rfc_2617_example() -> None:
    ch = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    answer = response(
        ch,
        username="Mufasa",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce="0a4f113b",
        nc=1,
    )
    assert answer == "6629fae49393a05397450978507c4ef1"


def test_without_qop_the_rfc_2069_form() -> None:
    ch = parse_challenge('Digest realm="r", nonce="n", algorithm=MD5')

    # md5(md5("u:r:p"):n:md5("INVITE:sip:x@y")), computed independently with hashlib.
    def md5(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()

    expected = md5(f"{md5('u:r:p')}:n:{md5('INVITE:sip:x@y')}")
    assert response(ch, username="u", password="p", method="INVITE", uri="sip:x@y") == expected
    header = authorization(
        ch, username="u", password="p", method="INVITE", uri="sip:x@y", cnonce="c"
    )
    assert header.startswith('Digest username="u", realm="r", nonce="n", uri="sip:x@y"')
    assert "qop" not in header


@pytest.mark.parametrize(
    "value",
    [
        'Basic realm="x"',
        'Digest realm="x"',
        'Digest realm="x", nonce="n", algorithm=SHA-256',
        'Digest realm="x", nonce="n", qop="auth-int"',
    ],
)
def test_challenges_we_cannot_answer_say_why(value: str) -> None:
    with pytest.raises(DigestError):
        parse_challenge(value)
