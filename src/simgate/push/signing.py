"""Standard Webhooks signatures (https://www.standardwebhooks.com/, issue #3 "Signing").

Headers: ``webhook-id`` (the push's stable id, the same on every retry), ``webhook-timestamp``
(Unix seconds of this attempt) and ``webhook-signature: v1,<base64 HMAC-SHA256>`` over
``"{id}.{timestamp}.{body}"`` (the body as sent; empty for GET pushes).

The key follows the Standard Webhooks convention: a secret written ``whsec_<base64>`` is the
base64 of the key bytes; any other secret is used as its UTF-8 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    if secret.startswith(PREFIX):
        try:
            return base64.b64decode(secret[len(PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            pass  # not valid base64 after all: fall back to the literal bytes
    return secret.encode("utf-8")


def signature(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def webhook_headers(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(
            secret=secret, msg_id=msg_id, timestamp=timestamp, body=body
        ),
    }


def verify(*, secret: str, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """Receiver side (tests, examples): any listed ``v1,`` signature matches."""
    want = signature(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body)
    return any(hmac.compare_digest(want, part) for part in header.split(" "))
