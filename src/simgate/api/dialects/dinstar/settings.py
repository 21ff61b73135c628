"""The ``[dinstar]`` settings section, validated at start in every role through ``DIALECT``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from simgate.errors import ConfigError
from simgate.settings import Settings

PushType = Literal["sms", "sms_result", "sms_deliver_status", "ussd", "register"]
PUSH_TYPES: tuple[PushType, ...] = ("sms", "sms_result", "sms_deliver_status", "ussd", "register")
SN_PATTERN = r"^[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}$"


class DinstarSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The gateway serial every answer and push carries (spec §2.1, §7).
    sn: str = Field(default="0000-0000-0000-0001", pattern=SN_PATTERN)
    # Lines whose ports this gateway exposes, in order (port 0 = first port of the first
    # line); empty = every configured line, in settings order.
    lines: tuple[str, ...] = ()
    # Limits from the vendor pages (spec §2.2, §2.3).
    max_numbers: int = Field(default=128, ge=1)
    max_text_bytes: int = Field(default=1500, ge=1)
    max_query_numbers: int = Field(default=32, ge=1)
    # query_sms_result without filters: the most recent 1 000 (spec §7); also the cap of any query.
    result_limit: int = Field(default=1000, ge=1, le=50_000)
    incoming_limit: int = Field(default=1000, ge=1, le=50_000)
    # Pushes (spec §2.9); `simgate gateway push` stores an override in the database.
    push_url: str | None = None
    push_types: tuple[PushType, ...] = PUSH_TYPES
    # Auth (spec §2.1, RFC 7616): nonce lifetime, the Basic verification cache, login limits.
    nonce_ttl_seconds: int = Field(default=300, ge=5)
    nonce_secret: str | None = None  # default: a random secret kept in the database
    basic_cache_seconds: float = Field(default=60.0, ge=0)
    login_failures: int = Field(default=10, ge=1)
    # Failed logins of any usernames from one address (IPv6: one /64) in the window: stops a
    # spray of fresh usernames and the flood that would push out other counters (issue 14).
    login_failures_per_address: int = Field(default=30, ge=1)
    login_window_seconds: float = Field(default=300.0, gt=0)


def check_lines(cfg: DinstarSettings, settings: Settings) -> None:
    """The lines whose ports the gateway exposes must be configured (ports.PortMap)."""
    unknown = [n for n in cfg.lines if n not in settings.lines]
    if unknown:
        raise ConfigError(f"dinstar.lines names unknown line(s): {', '.join(unknown)}")
