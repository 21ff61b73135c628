"""The Dinstar/Ultiroam GSM-gateway HTTP API (spec §2).

``routes.mount`` adds ``/api/...`` with Basic and Digest auth (:mod:`.auth`); the handlers
live in :mod:`.sms` and :mod:`.device`. ``DinstarPlanner`` (:mod:`.push`) turns domain events
into the gateway's JSON pushes.
"""

from __future__ import annotations

from simgate.api.dialect import Dialect
from simgate.api.dialects.dinstar.push import DinstarPlanner
from simgate.api.dialects.dinstar.routes import mount
from simgate.api.dialects.dinstar.settings import DinstarSettings, check_lines

DIALECT = Dialect(name="dinstar", settings=DinstarSettings, mount=mount, check=check_lines)

__all__ = ["DIALECT", "DinstarPlanner"]
