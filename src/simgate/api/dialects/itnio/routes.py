"""Mounting the itniotech dialect: one authenticator and one replay guard for SMS and voice.

Errors raised before a handler runs (authentication, in a dependency) render as the envelope
through the application's exception handler; handlers envelope their own outcomes.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from simgate.api.dialects.itnio.auth import Authenticator
from simgate.api.dialects.itnio.envelope import ItnioError, error_response
from simgate.api.dialects.itnio.replay import ReplayGuard
from simgate.api.dialects.itnio.settings import ItnioSettings
from simgate.api.dialects.itnio.sms import SmsApi
from simgate.api.dialects.itnio.voice import VoiceApi
from simgate.services.container import Services


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ItnioError)
    return error_response(exc)


def mount(app: FastAPI, services: Services, cfg: ItnioSettings) -> None:
    app.add_exception_handler(ItnioError, _refused)
    auth = Authenticator(services, cfg)
    guard = ReplayGuard(services.itnio, clock=services.clock, cfg=cfg)
    app.include_router(SmsApi(services, cfg, auth, guard).router())
    app.include_router(VoiceApi(services, cfg, auth, guard).router())
