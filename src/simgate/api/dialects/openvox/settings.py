"""The ``[openvox]`` settings section (spec §7 "OpenVox family"; every value is a default).

``Settings.openvox`` is a free dict owned by this dialect; ``DIALECT`` validates it at start in
every role, so a typo fails at start-up with one line naming the key.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from simgate.errors import ConfigError
from simgate.settings import Settings


class OpenVoxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # §7: "code 200 = success (config)".
    success_code: int = 200
    # §7: sync mode of /sms/send waits up to 30 s (config) for the line's answer.
    sync_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # §7: 50 rows per page in /smsoutbox/get and /smsinbox/get.
    page_size: int = Field(default=50, ge=1, le=1000)
    # The line whose ports are the spans (1-based); None = the first configured line.
    line: str | None = None
    # Longest msg accepted (characters): ten concatenated GSM-7 parts by default.
    max_msg_chars: int = Field(default=1530, ge=1, le=100_000)
    # dest_num may be a comma list (§7); more numbers than this in one request is refused.
    max_dest_numbers: int = Field(default=1000, ge=1, le=100_000)
    # Successful credential checks are remembered this long (scrypt costs ~50 ms each), so
    # a changed password or a locked account takes effect within this many seconds.
    auth_cache_seconds: float = Field(default=10.0, ge=0, le=3600)
    # Entries of that cache, and of each login-failure table (locks are kept apart: fresh
    # usernames never push a lock out, issue 14).
    auth_cache_entries: int = Field(default=4096, ge=1)
    # Wrong passwords per username and address before 401 without checking, for the window.
    login_failures: int = Field(default=10, ge=1)
    # Failed logins of any usernames from one address (IPv6: one /64) in the window.
    login_failures_per_address: int = Field(default=30, ge=1)
    login_window_seconds: float = Field(default=300, gt=0)


def check_line(cfg: OpenVoxSettings, settings: Settings) -> None:
    """The line named by ``openvox.line`` must be configured."""
    if cfg.line is not None and cfg.line not in settings.lines:
        raise ConfigError(f"invalid setting openvox.line: no line named {cfg.line!r}")
