"""The ``[push]`` settings section, validated by the push engine itself (issue #3)."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from simgate.errors import ConfigError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class PushSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Whether worker processes run the sender (the outbox is always written).
    enabled: bool = True
    # Timeouts per attempt (issue #3: connect 5 s, total 15 s).
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    total_timeout_seconds: float = Field(default=15.0, gt=0)
    # Backoff: base * 2^(attempt-1), capped, with jitter (half to full delay).
    retry_base_seconds: float = Field(default=10.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    # A receiver's Retry-After is honoured up to this long.
    retry_after_max_seconds: float = Field(default=6 * 3600.0, gt=0)
    # Retry for at least this long after the push was planned, then dead-letter it
    # (spec §7 "exponential backoff for at least 24 h").
    give_up_after_seconds: float = Field(default=24 * 3600.0, gt=0)
    # Claiming: rows per claim, in-flight rows per worker and per endpoint.
    batch_size: int = Field(default=500, ge=1, le=10_000)
    max_inflight: int = Field(default=2000, ge=1)
    per_endpoint_concurrency: int = Field(default=32, ge=1, le=1000)
    per_endpoint_window: int = Field(default=512, ge=1)
    # A claimed row is this worker's until then; past it another worker may send it again.
    lease_seconds: float = Field(default=300.0, gt=0)
    idle_poll_seconds: float = Field(default=0.2, gt=0)
    metrics_interval_seconds: float = Field(default=5.0, gt=0)
    max_response_bytes: int = Field(default=64 * 1024, ge=0)
    # SSRF guard: refuse private, loopback, link-local... targets (design principle 5).
    # Turning it off is for closed test rigs only; prefer allow_cidrs.
    guard: bool = True
    allow_cidrs: tuple[str, ...] = ()
    # TESTING ONLY: plan a JSON POST of every domain event to this URL (testing/echo_push.py),
    # so crash and benchmark runs can drive the engine without any dialect's push format.
    test_planner_url: str | None = None
    test_planner_secret: str | None = None

    @field_validator("allow_cidrs")
    @classmethod
    def _cidrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in v:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"not an address or CIDR: {cidr!r}") from None
        return v

    @model_validator(mode="after")
    def _lease_covers_window(self) -> PushSettings:
        # A row may wait for window/concurrency sends of up to total_timeout each before its
        # own; its lease must outlast that, or another worker could send it concurrently.
        rounds = math.ceil(self.per_endpoint_window / self.per_endpoint_concurrency) + 1
        if self.lease_seconds < rounds * self.total_timeout_seconds:
            raise ValueError(
                f"lease_seconds must be at least {rounds * self.total_timeout_seconds:g} "
                "((per_endpoint_window / per_endpoint_concurrency + 1) * total_timeout_seconds)"
            )
        if self.connect_timeout_seconds > self.total_timeout_seconds:
            raise ValueError("connect_timeout_seconds exceeds total_timeout_seconds")
        return self

    def networks(self) -> tuple[IpNetwork, ...]:
        return tuple(ipaddress.ip_network(c, strict=False) for c in self.allow_cidrs)


def load_push_settings(section: Mapping[str, Any]) -> PushSettings:
    """Validate ``settings.push``; errors become one ConfigError line naming the key."""
    try:
        return PushSettings.model_validate(dict(section))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        where = f"push.{where}" if where else "push"
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
