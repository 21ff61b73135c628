"""The ``[openvox]`` settings section (spec §7 "OpenVox family"; every value is a default).

``Settings.openvox`` is a free dict owned by this dialect; it is validated here once, when the
dialect is mounted, so a typo fails at start-up with one line naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simgate.errors import ConfigError


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
    auth_cache_entries: int = Field(default=4096, ge=1)
    # Wrong passwords per username and address before 401 without checking, for the window.
    login_failures: int = Field(default=10, ge=1)
    login_window_seconds: float = Field(default=300, gt=0)


def load_openvox_settings(raw: Mapping[str, Any]) -> OpenVoxSettings:
    try:
        return OpenVoxSettings.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "openvox"
        raise ConfigError(f"invalid setting openvox.{where}: {first['msg']}") from None
