"""The OpenVox gateway "POST API for send and receive sms" (spec §3, §7; seed 002).

``routes.mount`` adds the endpoints (:mod:`.endpoints`); ``OpenVoxPlanner`` (:mod:`.push`)
plans the ``url_*`` pushes (incoming SMS, send results, delivery reports) for the push engine.
"""

from __future__ import annotations

from simgate.api.dialect import Dialect
from simgate.api.dialects.openvox.push import OpenVoxPlanner
from simgate.api.dialects.openvox.routes import mount
from simgate.api.dialects.openvox.settings import OpenVoxSettings, check_line

DIALECT = Dialect(name="openvox", settings=OpenVoxSettings, mount=mount, check=check_line)

__all__ = ["DIALECT", "OpenVoxPlanner"]
