"""The OpenVox gateway "POST API for send and receive sms" (spec §3, §7; seed 002).

``mount(app, services)`` adds the endpoints; ``OpenVoxPush`` is the push format of the
``url_*`` pushes (incoming SMS, send results, delivery reports).
"""

from simgate.api.dialects.openvox.push import OpenVoxPush
from simgate.api.dialects.openvox.routes import mount

__all__ = ["OpenVoxPush", "mount"]
