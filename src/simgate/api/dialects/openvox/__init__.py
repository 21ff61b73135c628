"""The OpenVox gateway "POST API for send and receive sms" (spec §3, §7; seed 002).

``mount(app, services)`` adds the endpoints; ``OpenVoxPlanner`` plans the ``url_*`` pushes
(incoming SMS, send results, delivery reports) for the push engine.
"""

from simgate.api.dialects.openvox.push import OpenVoxPlanner
from simgate.api.dialects.openvox.routes import mount

__all__ = ["OpenVoxPlanner", "mount"]
