"""The ``[push]`` settings section: the model lives in :mod:`simgate.settings`, so the section
is validated once at start with the rest; this module keeps the engine's loader."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from simgate.errors import ConfigError
from simgate.settings import IpNetwork, PushSettings

__all__ = ["IpNetwork", "PushSettings", "load_push_settings"]


def load_push_settings(section: Mapping[str, Any] | PushSettings) -> PushSettings:
    """Validate ``settings.push``; errors become one ConfigError line naming the key."""
    if isinstance(section, PushSettings):  # already validated with the settings
        return section
    try:
        return PushSettings.model_validate(dict(section))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        where = f"push.{where}" if where else "push"
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
