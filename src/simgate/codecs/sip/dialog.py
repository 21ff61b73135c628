"""The requests of one outgoing call (RFC 3261 §8.1, §12.1.2, §13.2, §15, §17.1) and our
answers to the far end's in-dialog requests, as pure builders.

:class:`OutgoingDialog` remembers what the requests of one call share (Call-ID, From tag,
CSeq, the INVITE's branch, then the far end's tag, target and route set once it answers);
the driver in lines/sip/ sends what it builds and feeds it the responses. Random tokens (tags,
branches, cnonces) come from the injected ``token`` so tests can fix them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from simgate.codecs.sip import digest
from simgate.codecs.sip.message import SipRequest, SipResponse, addr_uri, header_params

BRANCH_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7: marks a branch as RFC 3261 unique
USER_AGENT = "simgate"
ALLOW = "INVITE, ACK, CANCEL, BYE, INFO, OPTIONS"


def _token() -> str:
    return secrets.token_hex(8)


@dataclass
class OutgoingDialog:
    """One INVITE client transaction and the dialog its 2xx makes."""

    call_id: str
    local_uri: str  # sip:from_user@domain (our From)
    remote_uri: str  # sip:callee@domain (To, and the first Request-URI)
    contact: str  # sip:from_user@our-address:port;transport=...
    via_host: str  # host:port of our SIP socket
    transport: str = "UDP"
    display: str = ""
    token: Callable[[], str] = _token
    local_tag: str = ""
    cseq: int = 0
    invite_branch: str = ""
    invite_cseq: int = 0
    invite_auth: tuple[str, str] | None = None  # (header name, value) of the last INVITE
    remote_tag: str = ""
    target: str = ""  # the far end's Contact (where in-dialog requests go, §12.1.2)
    route_set: list[str] = field(default_factory=list)
    nc: int = 0  # digest nonce count
    last_invite: SipRequest | None = None  # what a retransmission resends (§17.1.1.2)

    def __post_init__(self) -> None:
        self.local_tag = self.local_tag or self.token()

    # ---- requests --------------------------------------------------------------------
    def invite(self, sdp: bytes, *, auth: tuple[str, str] | None = None) -> SipRequest:
        """A new INVITE (a new transaction: branch and CSeq); ``auth`` after a challenge."""
        self.cseq += 1
        self.invite_cseq = self.cseq
        self.invite_branch = BRANCH_COOKIE + self.token()
        self.invite_auth = auth
        req = self._request("INVITE", self.remote_uri, self.invite_branch, self.invite_cseq)
        req.headers += [
            ("Contact", f"<{self.contact}>"),
            ("Allow", ALLOW),
            ("Content-Type", "application/sdp"),
        ]
        if auth is not None:
            req.headers.append(auth)
        req.body = sdp
        self.last_invite = req
        return req

    def cancel(self) -> SipRequest:
        """CANCEL the INVITE (§9.1): its Request-URI, branch and CSeq number, no To tag."""
        req = self._request("CANCEL", self.remote_uri, self.invite_branch, self.invite_cseq)
        if self.invite_auth is not None:
            req.headers.append(self.invite_auth)
        return req

    def ack(self, resp: SipResponse) -> SipRequest:
        """ACK a final answer to the INVITE: a 2xx in the dialog (§13.2.2.4, a new branch to
        the far end's target), anything else in the INVITE's transaction (§17.1.1.3)."""
        if 200 <= resp.status < 300:
            req = self._request(
                "ACK",
                self.target or self.remote_uri,
                BRANCH_COOKIE + self.token(),
                self.invite_cseq,
            )
            req.headers[4:4] = [("Route", r) for r in self.route_set]
        else:
            req = self._request("ACK", self.remote_uri, self.invite_branch, self.invite_cseq)
            req.headers = [(n, resp.get("to") if n == "To" else v) for n, v in req.headers]
        if self.invite_auth is not None:
            req.headers.append(self.invite_auth)
        return req

    def bye(self) -> SipRequest:
        self.cseq += 1
        req = self._request(
            "BYE", self.target or self.remote_uri, BRANCH_COOKIE + self.token(), self.cseq
        )
        req.headers[4:4] = [("Route", r) for r in self.route_set]
        return req

    def _request(self, method: str, uri: str, branch: str, cseq: int) -> SipRequest:
        to = f"<{self.remote_uri}>" + (f";tag={self.remote_tag}" if self.remote_tag else "")
        display = f'"{self.display}" ' if self.display else ""
        return SipRequest(
            headers=[
                ("Via", f"SIP/2.0/{self.transport} {self.via_host};branch={branch};rport"),
                ("Max-Forwards", "70"),
                ("From", f"{display}<{self.local_uri}>;tag={self.local_tag}"),
                ("To", to),
                ("Call-ID", self.call_id),
                ("CSeq", f"{cseq} {method}"),
                ("User-Agent", USER_AGENT),
            ],
            method=method,
            uri=uri,
        )

    # ---- responses -------------------------------------------------------------------
    def established(self, resp: SipResponse) -> None:
        """Note the dialog a 2xx (or a tagged 1xx) creates: tag, target, route set (§12.1.2)."""
        self.remote_tag = header_params(resp.get("to")).get("tag", self.remote_tag)
        contact = resp.get("contact")
        if contact:
            self.target = addr_uri(contact)
        if 200 <= resp.status < 300:
            self.route_set = list(reversed(resp.get_all("record-route")))

    def authorize(self, resp: SipResponse, *, username: str, password: str) -> tuple[str, str]:
        """The header answering a 401/407 challenge to our INVITE (raises DigestError)."""
        proxy = resp.status == 407
        challenge = digest.parse_challenge(
            resp.get("proxy-authenticate" if proxy else "www-authenticate")
        )
        self.nc += 1
        value = digest.authorization(
            challenge,
            username=username,
            password=password,
            method="INVITE",
            uri=self.remote_uri,
            cnonce=self.token(),
            nc=self.nc,
        )
        return ("Proxy-Authorization" if proxy else "Authorization", value)


def reply(req: SipRequest, status: int, reason: str, *, local_tag: str = "") -> SipResponse:
    """Our answer to the far end's request (§8.2.6): its Via, From, To (our tag), Call-ID
    and CSeq copied."""
    to = req.get("to")
    if local_tag and "tag" not in header_params(to):
        to = f"{to};tag={local_tag}"
    headers = [("Via", v) for v in req.get_all("via")]
    headers += [
        ("From", req.get("from")),
        ("To", to),
        ("Call-ID", req.call_id),
        ("CSeq", req.get("cseq")),
        ("User-Agent", USER_AGENT),
    ]
    if req.method in ("INVITE", "OPTIONS"):
        headers.append(("Allow", ALLOW))
    return SipResponse(headers=headers, status=status, reason=reason)


def response_key(resp: SipResponse) -> tuple[str, int]:
    """(method, CSeq number) of a response: which of our requests it answers."""
    number, method = resp.cseq
    return method, number
