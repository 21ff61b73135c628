"""The Dinstar/Ultiroam GSM-gateway HTTP API (spec §2).

``routes.mount`` adds ``/api/...`` with Basic and Digest auth (:mod:`.auth`); the handlers
live in :mod:`.sms` and :mod:`.device`. ``DinstarPush`` (:mod:`.push`) is the push format of
the gateway's JSON pushes.
"""

from __future__ import annotations

from simgate.api.dialect import Dialect
from simgate.api.dialects.dinstar.push import DinstarPush
from simgate.api.dialects.dinstar.routes import mount
from simgate.api.dialects.dinstar.settings import DinstarSettings, check_lines

DIALECT = Dialect(
    name="dinstar", settings=DinstarSettings, mount=mount, check=check_lines, push=DinstarPush
)

__all__ = ["DIALECT", "DinstarPush"]
