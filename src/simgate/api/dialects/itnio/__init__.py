"""The itniotech cloud API dialect (spec §1, §7): signed headers, String status codes.

``routes.mount`` installs one authenticator (:mod:`.auth`) and one replay guard
(:mod:`.replay`) for the SMS (:mod:`.sms`) and voice (:mod:`.voice`) routes; both render
through :mod:`.envelope`, :mod:`.render` and :mod:`.voice_render`.
"""

from __future__ import annotations

from simgate.api.dialect import Dialect
from simgate.api.dialects.itnio.push import ItnioPush
from simgate.api.dialects.itnio.routes import mount
from simgate.api.dialects.itnio.settings import ItnioSettings

DIALECT = Dialect(
    name="itnio", settings=ItnioSettings, mount=mount, push=lambda _settings, _lines: ItnioPush()
)

__all__ = ["DIALECT", "ItnioPush"]
