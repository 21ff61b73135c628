"""The itniotech cloud API dialect (spec §1, §7): signed headers, String status codes.

``mount(app, services)`` installs the shared authenticator and the SMS and voice routes; both
use :mod:`.auth` (``Depends(itnio_auth)``), :mod:`.envelope` and one replay guard.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from simgate.api.dialects.itnio import auth
from simgate.api.dialects.itnio.config import load
from simgate.api.dialects.itnio.envelope import ItnioError, error_response
from simgate.api.dialects.itnio.replay import ReplayGuard
from simgate.api.dialects.itnio.sms import SmsApi
from simgate.api.dialects.itnio.voice import VoiceApi
from simgate.services.container import Services


def install_envelope(app: FastAPI) -> None:
    """Errors raised before a handler runs (auth, body limits) render as the envelope."""

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ItnioError)
        return error_response(exc)

    app.add_exception_handler(ItnioError, handler)


def mount(app: FastAPI, services: Services) -> None:
    cfg = load(services.settings.itnio)
    auth.install(app, services, cfg)
    install_envelope(app)
    guard = ReplayGuard(services, cfg)
    app.include_router(SmsApi(services, cfg, guard).router())
    app.include_router(VoiceApi(services, cfg, guard).router())
