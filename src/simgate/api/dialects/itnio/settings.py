"""The ``[itnio]`` settings section (spec §7), validated at start through ``DIALECT``."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ItnioSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # §7: Timestamp must be within ±300 s of our clock (the clone docs say ±1800 s).
    timestamp_window_seconds: int = Field(default=300, ge=1, le=86_400)
    # Keys and accounts are cached this long per process; a revoked key or a locked account
    # is refused at most this late. 0 = read the database on every request.
    auth_cache_seconds: float = Field(default=1.0, ge=0)
    # Failed authentications (-1) allowed in the window per client IP (IPv6: per /64), per
    # Api-Key from one IP, and per Api-Key from everywhere; past one, that IP, that key from
    # that IP or that key is answered -15 ("query too frequently") until the window moves
    # on. The key-wide limit locks the owner out too (the key travels in clear): it is far
    # higher and logs a warning when reached (issue 14 item 7).
    auth_fail_limit_ip: int = Field(default=30, ge=1)
    auth_fail_limit_key_ip: int = Field(default=10, ge=1)
    auth_fail_limit_key: int = Field(default=1000, ge=1)
    auth_fail_window_seconds: float = Field(default=60.0, gt=0)
    # A replay that arrives while the first request is still running waits this long for the
    # first response (§7 replay rule) before answering -18.
    replay_wait_seconds: float = Field(default=10.0, gt=0)
    # Operator content rules: sensitive words give -3; when templates (regular expressions)
    # are set, content must match one in full, else -6 (spec §1.2).
    sensitive_words: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()
    # getReport and getSentRcd look this far back (spec §1.5, §1.6: "last 90 days").
    history_days: int = Field(default=90, ge=1)
    # getSentRcd page size (spec §1.6 / §7: 50 000 rows).
    page_rows: int = Field(default=50_000, ge=1, le=50_000)

    @field_validator("templates")
    @classmethod
    def _compile(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"template {pattern!r} is not a regular expression: {exc}"
                ) from None
        return v
