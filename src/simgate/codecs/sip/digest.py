"""HTTP digest for SIP (RFC 3261 §22.4, RFC 2617 §3.2.2, RFC 7616 §3.4): MD5 answers to a
401 WWW-Authenticate or 407 Proxy-Authenticate challenge.

Only MD5 (and qop "auth" or none) is answered: it is what SIP trunks ask for. Another
algorithm is a :class:`DigestError` naming it, so the call ends with a clear reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


class DigestError(ValueError):
    """A challenge we cannot answer."""


@dataclass(frozen=True, slots=True)
class Challenge:
    realm: str
    nonce: str
    opaque: str = ""
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    stale: bool = False


def parse_challenge(value: str) -> Challenge:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DigestError(f"auth scheme {scheme!r} is not Digest")
    params = _params(rest)
    if "nonce" not in params:
        raise DigestError("digest challenge without a nonce")
    algorithm = params.get("algorithm", "MD5")
    if algorithm.upper() != "MD5":
        raise DigestError(f"digest algorithm {algorithm!r} is not supported (MD5 only)")
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    if qop and "auth" not in qop:
        raise DigestError(f"digest qop {params['qop']!r} has no 'auth'")
    return Challenge(
        realm=params.get("realm", ""),
        nonce=params["nonce"],
        opaque=params.get("opaque", ""),
        algorithm=algorithm,
        qop=qop,
        stale=params.get("stale", "").lower() == "true",
    )


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def response(
    ch: Challenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str = "",
    nc: int = 1,
) -> str:
    """The ``response`` value (RFC 2617 §3.2.2.1): with qop auth when offered."""
    ha1 = _md5(f"{username}:{ch.realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    if "auth" in ch.qop:
        return _md5(f"{ha1}:{ch.nonce}:{nc:08x}:{cnonce}:auth:{ha2}")
    return _md5(f"{ha1}:{ch.nonce}:{ha2}")


def authorization(
    ch: Challenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str,
    nc: int = 1,
) -> str:
    """The Authorization / Proxy-Authorization header value answering ``ch``."""
    answer = response(
        ch, username=username, password=password, method=method, uri=uri, cnonce=cnonce, nc=nc
    )
    parts = [
        f'username="{username}"',
        f'realm="{ch.realm}"',
        f'nonce="{ch.nonce}"',
        f'uri="{uri}"',
        f'response="{answer}"',
        f"algorithm={ch.algorithm}",
    ]
    if "auth" in ch.qop:
        parts += ["qop=auth", f"nc={nc:08x}", f'cnonce="{cnonce}"']
    if ch.opaque:
        parts.append(f'opaque="{ch.opaque}"')
    return "Digest " + ", ".join(parts)


def _params(text: str) -> dict[str, str]:
    """``a="x, y", b=z`` → {"a": "x, y", "b": "z"} (commas inside quotes kept)."""
    out: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " ,\t":
            i += 1
        eq = text.find("=", i)
        if eq < 0:
            break
        name = text[i:eq].strip().lower()
        i = eq + 1
        if i < n and text[i] == '"':
            end = i + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            out[name] = text[i + 1 : end].replace('\\"', '"')
            i = end + 1
        else:
            end = text.find(",", i)
            end = n if end < 0 else end
            out[name] = text[i:end].strip()
            i = end
    return out
