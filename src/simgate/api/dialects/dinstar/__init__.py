"""The Dinstar/Ultiroam GSM-gateway HTTP API (spec §2, issue #6).

``mount(app, services)`` adds ``/api/...`` with Basic and Digest auth; ``DinstarPush``
is the push format of the gateway's JSON pushes.
"""

from __future__ import annotations

from simgate.api.dialects.dinstar.app import mount
from simgate.api.dialects.dinstar.push import DinstarPush

__all__ = ["DinstarPush", "mount"]
