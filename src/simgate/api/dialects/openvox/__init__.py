"""The OpenVox gateway "POST API for send and receive sms" (spec §3, §7; seed 002).

``routes.mount`` adds the endpoints (:mod:`.endpoints`); ``OpenVoxPush`` (:mod:`.push`) is the
push format of the ``url_*`` pushes (incoming SMS, send results, delivery reports).
"""

from __future__ import annotations

from simgate.api.dialect import Dialect
from simgate.api.dialects.openvox.push import OpenVoxPush
from simgate.api.dialects.openvox.routes import mount
from simgate.api.dialects.openvox.settings import OpenVoxSettings, check_line

DIALECT = Dialect(
    name="openvox",
    settings=OpenVoxSettings,
    mount=mount,
    check=check_line,
    push=lambda _settings, lines: OpenVoxPush(lines),
)

__all__ = ["DIALECT", "OpenVoxPush"]
