"""REGISTER (RFC 3261 §10.2): our binding at the trunk, refreshed before it expires.

One Call-ID for every REGISTER of a line, the CSeq growing (§10.2.4); a 401/407 is answered
with digest once per challenge. Pure: the line sends what this builds and feeds the answers.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from simgate.codecs.sip import digest
from simgate.codecs.sip.dialog import BRANCH_COOKIE, USER_AGENT
from simgate.codecs.sip.message import SipRequest, SipResponse, header_params


def _token() -> str:
    return secrets.token_hex(8)


@dataclass
class Registration:
    aor: str  # sip:user@domain (From and To)
    registrar: str  # sip:domain (the Request-URI)
    contact: str
    via_host: str
    transport: str = "UDP"
    expires: int = 300
    token: Callable[[], str] = _token
    call_id: str = ""
    tag: str = ""
    cseq: int = 0
    nc: int = 0

    def __post_init__(self) -> None:
        self.call_id = self.call_id or f"{self.token()}@simgate"
        self.tag = self.tag or self.token()

    def request(
        self, *, auth: tuple[str, str] | None = None, expires: int | None = None
    ) -> SipRequest:
        self.cseq += 1
        branch = BRANCH_COOKIE + self.token()
        req = SipRequest(
            headers=[
                ("Via", f"SIP/2.0/{self.transport} {self.via_host};branch={branch};rport"),
                ("Max-Forwards", "70"),
                ("From", f"<{self.aor}>;tag={self.tag}"),
                ("To", f"<{self.aor}>"),
                ("Call-ID", self.call_id),
                ("CSeq", f"{self.cseq} REGISTER"),
                ("Contact", f"<{self.contact}>"),
                ("Expires", str(self.expires if expires is None else expires)),
                ("User-Agent", USER_AGENT),
            ],
            method="REGISTER",
            uri=self.registrar,
        )
        if auth is not None:
            req.headers.append(auth)
        return req

    def authorize(self, resp: SipResponse, *, username: str, password: str) -> tuple[str, str]:
        proxy = resp.status == 407
        challenge = digest.parse_challenge(
            resp.get("proxy-authenticate" if proxy else "www-authenticate")
        )
        self.nc += 1
        value = digest.authorization(
            challenge,
            username=username,
            password=password,
            method="REGISTER",
            uri=self.registrar,
            cnonce=self.token(),
            nc=self.nc,
        )
        return ("Proxy-Authorization" if proxy else "Authorization", value)

    def granted_seconds(self, ok: SipResponse) -> int:
        """How long the registrar keeps us (§10.2.4): our Contact's expires, else Expires."""
        for contact in ok.get_all("contact"):
            if self.contact in contact:
                value = header_params(contact).get("expires", "")
                if value.isdigit():
                    return int(value)
        value = ok.get("expires").strip()
        return int(value) if value.isdigit() else self.expires
