"""Accounts, apps, API keys and gateway users as values."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field


class AppKind(enum.StrEnum):
    SMS = "sms"
    VOICE = "voice"


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    currency: str
    timezone: str
    balance_micros: int
    gift_micros: int
    credit_micros: int
    locked: bool

    @property
    def spendable_micros(self) -> int:
        return self.balance_micros + self.gift_micros + self.credit_micros


class LedgerKind(enum.StrEnum):
    """What an operator did to an account's money (the account ledger)."""

    OPENING = "opening"  # the balance an account was created with
    TOPUP = "topup"  # money added to the balance
    GIFT = "gift"  # money added to the gift balance
    CORRECTION = "correction"  # a signed fix of the balance, always with a reason


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One operator movement of an account's money, as the ledger keeps it.

    ``balance_after_micros`` and ``gift_after_micros`` are the account's figures right after
    the movement (message charges and call debits between two entries move them too).
    """

    id: int
    account_id: int
    at_ms: int
    kind: LedgerKind
    amount_micros: int
    balance_after_micros: int
    gift_after_micros: int
    by: str
    reason: str


@dataclass(frozen=True, slots=True)
class App:
    id: int
    app_id: str
    account_id: int
    kind: AppKind
    name: str
    # Push settings: the dialect that owns the app decides what they mean.
    push: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    key: str
    secret: str  # decrypted; stored encrypted at rest
    account_id: int
    allow_ips: tuple[str, ...]
    revoked: bool

    def allows(self, ip: str) -> bool:
        """Empty allow-list = any address. Entries are addresses or CIDRs."""
        if not self.allow_ips:
            return True
        return ip_in_any(ip, self.allow_ips)


class GatewayRole(enum.StrEnum):
    """What a gateway user (Dinstar, OpenVox) may do (issue 14 item 1).

    Ports, lines and USSD are the operator's: an ``operator`` controls ports and sees every
    port's SIM ids, the whole queue and every USSD reply; an ``account`` user sends and reads
    its own account's traffic, on the ports assigned to its account or shared (README
    "Gateway users and ports"). New users and users from before roles existed are ``account``.
    """

    OPERATOR = "operator"
    ACCOUNT = "account"


@dataclass(frozen=True, slots=True)
class GatewayUser:
    id: int
    username: str
    password_hash: str
    account_id: int
    # Digest auth needs HA1 = H(user:realm:password); kept per algorithm, never the password.
    digest_md5: str
    digest_sha256: str
    role: GatewayRole = GatewayRole.ACCOUNT

    @property
    def operator(self) -> bool:
        return self.role is GatewayRole.OPERATOR


def ip_in_any(ip: str, cidrs: tuple[str, ...] | list[str]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for cidr in cidrs:
        try:
            if addr in ipaddress.ip_network(cidr, strict=False):
                return True
        except ValueError:
            continue
    return False


def validate_cidrs(cidrs: list[str]) -> tuple[str, ...]:
    out = []
    for c in cidrs:
        try:
            out.append(str(ipaddress.ip_network(c.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR: {c!r}") from None
    return tuple(out)
