"""Signing (Standard Webhooks) and the retry policy: pure functions, every case."""

from __future__ import annotations

import email.utils
import random

import pytest

from simgate.push.policy import (
    Verdict,
    backoff_seconds,
    classify,
    next_attempt_ms,
    retry_after_seconds,
)
from simgate.push.signing import secret_key, signature, verify, webhook_headers

# The Standard Webhooks specification's published test vector.
VECTOR = {
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "msg_id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "timestamp": 1614265330,
    "body": b'{"test": 2432232314}',
}


def test_signature_matches_the_standard_webhooks_vector() -> None:
    assert signature(**VECTOR) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="  # type: ignore[arg-type]


def test_secret_convention() -> None:
    assert secret_key("whsec_aGVsbG8=") == b"hello"
    assert secret_key("plain secret") == b"plain secret"
    assert secret_key("whsec_not base64!") == b"whsec_not base64!"  # falls back to the bytes


def test_headers_and_verification() -> None:
    h = webhook_headers(secret="s3cret", msg_id="msg_1", timestamp=1700000000, body=b"x")
    assert h["webhook-id"] == "msg_1"
    assert h["webhook-timestamp"] == "1700000000"
    good = h["webhook-signature"]
    assert verify(secret="s3cret", msg_id="msg_1", timestamp=1700000000, body=b"x", header=good)
    assert not verify(secret="s3cret", msg_id="msg_1", timestamp=1700000000, body=b"y", header=good)
    assert not verify(secret="other", msg_id="msg_1", timestamp=1700000000, body=b"x", header=good)
    assert verify(
        secret="s3cret", msg_id="msg_1", timestamp=1700000000, body=b"x", header="v1,AAAA " + good
    )


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.ACCEPTED),
        (201, Verdict.ACCEPTED),
        (204, Verdict.ACCEPTED),
        (299, Verdict.ACCEPTED),
        (408, Verdict.RETRY),
        (425, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (599, Verdict.RETRY),
        (100, Verdict.FAILED),
        (301, Verdict.FAILED),
        (302, Verdict.FAILED),
        (400, Verdict.FAILED),
        (401, Verdict.FAILED),
        (403, Verdict.FAILED),
        (404, Verdict.FAILED),
        (410, Verdict.FAILED),
        (413, Verdict.FAILED),
    ],
)
def test_classify(status: int, verdict: Verdict) -> None:
    assert classify(status) is verdict


def test_retry_after_forms() -> None:
    now = 1_767_225_600_000
    assert retry_after_seconds(None, now_ms=now) is None
    assert retry_after_seconds("120", now_ms=now) == 120.0
    assert retry_after_seconds(" 0 ", now_ms=now) == 0.0
    date = email.utils.formatdate(now / 1000 + 90, usegmt=True)
    assert retry_after_seconds(date, now_ms=now) == pytest.approx(90, abs=1)
    past = email.utils.formatdate(now / 1000 - 90, usegmt=True)
    assert retry_after_seconds(past, now_ms=now) == 0.0
    for bad in ("soon", "-5", "1.5", ""):
        assert retry_after_seconds(bad, now_ms=now) is None


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    for attempts, full in [(1, 10), (2, 20), (3, 40), (8, 1280), (9, 2560), (10, 3600), (60, 3600)]:
        for _ in range(50):
            d = backoff_seconds(attempts, base=10, cap=3600, rng=rng)
            assert full / 2 <= d <= full
    spread = {round(backoff_seconds(5, base=10, cap=3600, rng=rng), 3) for _ in range(20)}
    assert len(spread) > 10  # jitter: receivers are not hit in lock-step


def test_next_attempt_honours_retry_after_and_the_horizon() -> None:
    rng = random.Random(1)
    common = {"base": 10.0, "cap": 3600.0, "retry_after_cap": 7200.0, "give_up_after": 86400.0}
    t0 = 1_000_000
    assert (
        next_attempt_ms(attempts=1, now_ms=t0, created_ms=t0, retry_after=300, rng=rng, **common)
        == t0 + 300_000
    )
    assert (
        next_attempt_ms(attempts=1, now_ms=t0, created_ms=t0, retry_after=10**9, rng=rng, **common)
        == t0 + 7_200_000
    )
    later = t0 + 86_399_000
    assert (
        next_attempt_ms(
            attempts=30, now_ms=later, created_ms=t0, retry_after=None, rng=rng, **common
        )
        is not None
    )  # still inside the day: one more try, even if it falls after the horizon
    assert (
        next_attempt_ms(
            attempts=31, now_ms=t0 + 86_400_000, created_ms=t0, retry_after=None, rng=rng, **common
        )
        is None
    )
